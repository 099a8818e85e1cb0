-- crm.sql — the demo CRM (MariaDB database "crm", Salesforce-style).
-- Tables and columns as in docs/demo-estate.md.  Idempotent.
CREATE DATABASE IF NOT EXISTS crm CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
USE crm;

CREATE TABLE IF NOT EXISTS accounts (
    id           varchar(18)  NOT NULL PRIMARY KEY,
    external_id  varchar(64)  UNIQUE,
    name         varchar(255) NOT NULL,
    email        varchar(255),
    phone        varchar(64),
    status       varchar(16)  NOT NULL DEFAULT 'prospect'
                 CHECK (status IN ('prospect', 'active', 'churned')),
    credit_limit decimal(12,2),
    updated_at   datetime(6)
) ENGINE=InnoDB;

-- Cases: the support desk's tickets as the CRM sees them (status only is
-- written by Steward; external_id is the support desk's ticket id).
CREATE TABLE IF NOT EXISTS cases (
    id             varchar(18)  NOT NULL PRIMARY KEY,
    external_id    varchar(64)  UNIQUE,
    subject        varchar(255),
    status         varchar(16)  NOT NULL DEFAULT 'new'
                   CHECK (status IN ('new', 'open', 'pending', 'solved', 'closed')),
    priority       varchar(16)
                   CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    supplied_email varchar(255),
    updated_at     datetime(6)
) ENGINE=InnoDB;
