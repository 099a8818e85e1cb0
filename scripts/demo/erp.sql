-- erp.sql — the demo ERP (PostgreSQL database "erp", schema public).
-- Tables and columns as in docs/demo-estate.md.  Idempotent: safe to load
-- into a database that already has them.
CREATE TABLE IF NOT EXISTS customers (
    customer_no         text PRIMARY KEY,
    name                text NOT NULL,
    email               text,
    credit_limit        numeric(12,2),
    crm_account_id      text,
    billing_customer_id text,
    blocked             boolean NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS products (
    sku        text PRIMARY KEY,
    name       text NOT NULL,
    list_price numeric(12,2) NOT NULL,
    active     boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS invoices (
    invoice_no  text PRIMARY KEY,
    customer_no text NOT NULL REFERENCES customers,
    amount      numeric(12,2) NOT NULL,
    currency    char(3) NOT NULL DEFAULT 'EUR',
    status      text NOT NULL CHECK (status IN ('open', 'paid', 'void')),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    due_date    date
);
