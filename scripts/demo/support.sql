-- support.sql — the demo support desk (PostgreSQL database "support",
-- Zendesk-style).  Tables and columns as in docs/demo-estate.md.  Idempotent.
CREATE TABLE IF NOT EXISTS tickets (
    id              bigserial PRIMARY KEY,
    external_id     text UNIQUE,
    requester_email text,
    customer_no     text,
    subject         text NOT NULL,
    status          text NOT NULL DEFAULT 'new'
                    CHECK (status IN ('new', 'open', 'pending', 'solved', 'closed')),
    priority        text CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
