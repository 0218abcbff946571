//! The SQLite schema, as the ordered list of scripts that build it: applying the first `n` gives
//! schema version `n` (kept in `PRAGMA user_version`). A script, once released, never changes:
//! a change of the schema is a new script at the end.

/// The schema migrations, in order: applying the first `n` gives schema version `n`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    CREATE TABLE plans (
        id          TEXT PRIMARY KEY NOT NULL,
        created_at  TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        head_commit TEXT NOT NULL,
        document    TEXT NOT NULL
    );
    CREATE TABLE plan_environments (
        plan_id     TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        environment TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        PRIMARY KEY (plan_id, environment)
    );
    CREATE INDEX plan_environments_newest
        ON plan_environments(environment, created_ms DESC, plan_id DESC);

    CREATE TABLE locks (
        environment      TEXT PRIMARY KEY NOT NULL,
        owner            TEXT NOT NULL,
        reason           TEXT NOT NULL,
        acquired_at      INTEGER NOT NULL,
        lease_expires_at INTEGER NOT NULL,
        token            TEXT NOT NULL
    );

    CREATE TABLE runs (
        id          TEXT PRIMARY KEY NOT NULL,
        environment TEXT NOT NULL,
        plan_id     TEXT,
        commit_id   TEXT NOT NULL,
        owner       TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        status      TEXT NOT NULL
    );
    CREATE INDEX runs_newest ON runs(started_at DESC, id DESC);
    CREATE INDEX runs_by_environment ON runs(environment, started_at DESC, id DESC);
    CREATE INDEX runs_by_status ON runs(environment, status);

    CREATE TABLE units (
        seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id               TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        stack                TEXT NOT NULL,
        stack_name           TEXT NOT NULL,
        state                TEXT NOT NULL,
        change_set_id        TEXT,
        client_request_token TEXT,
        replanned            INTEGER NOT NULL,
        message              TEXT,
        started_at           INTEGER,
        finished_at          INTEGER,
        UNIQUE (run_id, stack)
    );

    CREATE TABLE deployed (
        environment TEXT PRIMARY KEY NOT NULL,
        commit_id   TEXT NOT NULL,
        plan_id     TEXT,
        run_id      TEXT NOT NULL,
        at          INTEGER NOT NULL
    );

    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        environment TEXT NOT NULL,
        at          INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        actor       TEXT NOT NULL,
        detail      TEXT NOT NULL
    );
    CREATE INDEX events_newest ON events(at DESC, seq DESC);
    CREATE INDEX events_by_environment ON events(environment, at DESC, seq DESC);
    "#,
    // 2: where each stack of an environment stands.
    r#"
    CREATE TABLE stack_deployed (
        environment TEXT NOT NULL,
        stack       TEXT NOT NULL,
        commit_id   TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        run_id      TEXT NOT NULL,
        at          INTEGER NOT NULL,
        PRIMARY KEY (environment, stack)
    );
    "#,
    // 3: what was last seen of each stack, to judge it unchanged without a call.
    r#"
    CREATE TABLE stack_seen (
        environment TEXT NOT NULL,
        stack       TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        stamp       TEXT NOT NULL,
        at          INTEGER NOT NULL,
        PRIMARY KEY (environment, stack)
    );
    "#,
    // 4: policy results already evaluated, by the SHA-256 of the rules and the document.
    r#"
    CREATE TABLE policy_results (
        key    TEXT PRIMARY KEY NOT NULL,
        record TEXT NOT NULL,
        at     INTEGER NOT NULL
    );
    "#,
];

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;
