-- billing.sql — the demo billing platform (MariaDB database "billing",
-- Stripe-style).  Tables and columns as in docs/demo-estate.md.  Idempotent.
CREATE DATABASE IF NOT EXISTS billing CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
USE billing;

CREATE TABLE IF NOT EXISTS customers (
    id              varchar(32)  NOT NULL PRIMARY KEY,
    email           varchar(255),
    name            varchar(255),
    erp_customer_no varchar(64)  UNIQUE,
    created_at      datetime(6)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS subscriptions (
    id                 varchar(32)   NOT NULL PRIMARY KEY,
    customer_id        varchar(32)   NOT NULL,
    plan               varchar(64)   NOT NULL,
    status             varchar(16)   NOT NULL
                       CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
    amount             decimal(12,2) NOT NULL,
    current_period_end datetime(6),
    updated_at         datetime(6)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS payments (
    id          varchar(32)   NOT NULL PRIMARY KEY,
    customer_id varchar(32)   NOT NULL,
    invoice_no  varchar(64),
    amount      decimal(12,2) NOT NULL,
    currency    char(3)       NOT NULL,
    status      varchar(16)   NOT NULL
                CHECK (status IN ('succeeded', 'failed', 'refunded')),
    paid_at     datetime(6)
) ENGINE=InnoDB;
