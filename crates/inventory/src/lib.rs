//! The inventory store behind `atoll serve`: every declaration (as the JSON object the API
//! serves, with a `resourceVersion` for optimistic concurrency), the history of applied changes
//! as events, and hashed API tokens. One code path for SQLite (a file, no setup) and
//! PostgreSQL (for several replicas), through sqlx's `Any` driver; the schema is created by
//! versioned migrations recorded in `schema_migrations`.
//!
//! Writes happen inside a [`Tx`], so a caller can validate and render the result before
//! committing, and roll everything back when that fails.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// What the store refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create of an object that exists.
    #[error("{kind} {key} already exists")]
    AlreadyExists {
        /// The object's kind.
        kind: String,
        /// `namespace/name` or `name`.
        key: String,
    },
    /// A read, update or delete of an object that does not exist.
    #[error("{kind} {key} not found")]
    NotFound {
        /// The object's kind.
        kind: String,
        /// `namespace/name` or `name`.
        key: String,
    },
    /// An update whose resourceVersion is not the stored one (optimistic concurrency).
    #[error(
        "{kind} {key} was changed by someone else: resourceVersion {expected} is stale (now {actual})"
    )]
    Conflict {
        /// The object's kind.
        kind: String,
        /// `namespace/name` or `name`.
        key: String,
        /// The resourceVersion the writer read.
        expected: i64,
        /// The stored one.
        actual: i64,
    },
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored body does not parse (the database was edited by hand).
    #[error("stored object is not valid JSON: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The SQLite file could not be created.
    #[error("database file: {0}")]
    Io(String),
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (or `:memory:`).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// One migration: a version and its statements per backend.
struct Migration {
    version: i64,
    sqlite: &'static [&'static str],
    postgres: &'static [&'static str],
}

const OBJECTS: &str = "CREATE TABLE objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL, resource_version BIGINT NOT NULL, generation BIGINT NOT NULL,
    body TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name))";
// The same table on both; only the auto-increment key is spelled differently.
macro_rules! events_table {
    ($id:literal) => {
        concat!(
            "CREATE TABLE events (id ",
            $id,
            ", change_id TEXT NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
             kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, team TEXT NOT NULL,
             message TEXT NOT NULL, git_commit TEXT NOT NULL, clusters TEXT NOT NULL,
             before_body TEXT, after_body TEXT)"
        )
    };
}
const COUNTERS: &str = "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)";
const COUNTER_RV: &str = "INSERT INTO counters (name, value) VALUES ('resourceVersion', 0)";
const TOKENS: &str = "CREATE TABLE tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, team TEXT NOT NULL, role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL)";
const EVENTS_BY_OBJECT: &str = "CREATE INDEX events_object ON events (kind, namespace, name, id)";
const EVENTS_BY_TEAM: &str = "CREATE INDEX events_team ON events (team, id)";

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sqlite: &[
        OBJECTS,
        events_table!("INTEGER PRIMARY KEY AUTOINCREMENT"),
        COUNTERS,
        COUNTER_RV,
        TOKENS,
        EVENTS_BY_OBJECT,
        EVENTS_BY_TEAM,
    ],
    postgres: &[
        OBJECTS,
        events_table!("BIGSERIAL PRIMARY KEY"),
        COUNTERS,
        COUNTER_RV,
        TOKENS,
        EVENTS_BY_OBJECT,
        EVENTS_BY_TEAM,
    ],
}];

/// A stored declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The object's kind.
    pub kind: String,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// Its version, from the store's counter (higher is newer).
    pub resource_version: i64,
    /// The whole object as served: apiVersion, kind, metadata (with uid, resourceVersion,
    /// generation, creationTimestamp), spec.
    pub body: Value,
}

/// An applied change to one object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Ascending with time.
    pub id: i64,
    /// Events of one request (an apply of several objects, a rollback) share it.
    pub change_id: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// Who: the token's name.
    pub actor: String,
    /// create, update, delete, rollback.
    pub action: String,
    /// The object's kind.
    pub kind: String,
    /// Its namespace ("" for cluster-scoped kinds).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The owning team (namespace of an Application/TargetPolicy, name of a Team), or "".
    pub team: String,
    /// Why, as given by the caller.
    pub message: String,
    /// The Git commit that carried the change ("" when the render changed no file).
    pub commit: String,
    /// Clusters whose packages the change touched.
    pub clusters: Vec<String>,
    /// The object before and after (absent for create / delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The object after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Which events to list; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Of this kind.
    pub kind: Option<String>,
    /// In this namespace.
    pub namespace: Option<String>,
    /// Of objects of this name.
    pub name: Option<String>,
    /// Of this team.
    pub team: Option<String>,
    /// That touched this cluster's package.
    pub cluster: Option<String>,
    /// Of this one request.
    pub change_id: Option<String>,
    /// Inclusive bounds on `at` (RFC 3339).
    pub since: Option<String>,
    /// See `since`.
    pub until: Option<String>,
    /// Only these teams' events, plus fleet-level ones (team "") — what a non-admin may see.
    pub visible_to: Option<String>,
}

/// A role within a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the team's objects and the fleet.
    Reader,
    /// Also writes the team's Applications and TargetPolicies.
    Contributor,
    /// Also writes fleet-level objects and manages tokens.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "reader" => Ok(Role::Reader),
            "contributor" => Ok(Role::Contributor),
            "admin" => Ok(Role::Admin),
            o => Err(format!(
                "unknown role `{o}`: expected reader, contributor or admin"
            )),
        }
    }
}

impl Role {
    /// The role as tokens and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Contributor => "contributor",
            Role::Admin => "admin",
        }
    }
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (what events record as the actor).
    pub name: String,
    /// The team it acts for.
    pub team: String,
    /// What it may do.
    pub role: Role,
}

/// `s` matched literally by LIKE … ESCAPE '\\': `%` and `_` are not wildcards.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Creates a missing SQLite file with mode 0600 (SQLite gives its WAL and shared-memory
/// files the same mode).
fn create_private(path: &str) -> Result<(), StoreError> {
    if path.is_empty() || path.starts_with(':') || std::path::Path::new(path).exists() {
        return Ok(());
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Io(e.to_string())),
    }
}

/// The inventory: a connection pool to SQLite or PostgreSQL, migrated on open.
pub struct Store {
    pool: AnyPool,
    /// Which database it is.
    pub backend: Backend,
}

/// A write transaction.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The time now, RFC 3339 in UTC to the second (what events and metadata record).
pub fn now() -> String {
    let t = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(t.as_second())
        .expect("time")
        .to_string()
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("system randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A new uid in the Kubernetes format.
pub fn new_uid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The SHA-256 of a token, hex: what the store keeps instead of the token.
pub fn hash_token(token: &str) -> String {
    let d = sha2::Sha256::digest(token.as_bytes());
    d.iter().map(|x| format!("{x:02x}")).collect()
}

fn row_to_stored(r: &AnyRow) -> Result<Stored, StoreError> {
    Ok(Stored {
        kind: r.try_get("kind")?,
        namespace: r.try_get("namespace")?,
        name: r.try_get("name")?,
        resource_version: r.try_get("resource_version")?,
        body: serde_json::from_str(&r.try_get::<String, _>("body")?)?,
    })
}

fn key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

impl Store {
    /// Opens (and migrates) the store at `url`: `sqlite:PATH` (created readable by its owner
    /// only: it holds token hashes and every declaration) or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url, max) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                (Backend::Postgres, url.to_string(), 16)
            } else {
                let path = url.strip_prefix("sqlite:").unwrap_or(url);
                let path = path.strip_prefix("//").unwrap_or(path);
                create_private(path)?;
                // One writer at a time is SQLite's model (the server serialises its changes);
                // with WAL, readers on the other connections go on meanwhile — a token lookup
                // must not wait for a 10,000-object change to be recorded.
                (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"), 4)
            };
        let sqlite = backend == Backend::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(60))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // Another process (`atoll token create`) may hold the write lock.
                        sqlx::query("PRAGMA busy_timeout = 60000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for m in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            let stmts = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            for s in stmts {
                sqlx::query(*s).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(m.version)
                .bind(now())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// The schema versions applied, in order.
    pub async fn migrations(&self) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Whether the database answers (for readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        if self.backend == Backend::Sqlite {
            // Take SQLite's write lock up front (waiting for it as long as busy_timeout
            // allows): a deferred transaction that read first could not upgrade once another
            // connection had written, and would fail instead of waiting.
            return Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?);
        }
        Ok(self.pool.begin().await?)
    }

    /// The store's resourceVersion now (the last one handed out).
    pub async fn resource_version(&self) -> Result<i64, StoreError> {
        let mut c = self.pool.acquire().await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM counters WHERE name = 'resourceVersion'")
                .fetch_one(&mut *c)
                .await?,
        )
    }

    /// One object by kind, namespace ("" for cluster-scoped) and name.
    pub async fn get(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Stored>, StoreError> {
        let mut c = self.pool.acquire().await?;
        get(&mut c, kind, namespace, name).await
    }

    /// Objects of `kind` (all kinds when `None`), in `namespace` when given, by key.
    pub async fn list(
        &self,
        kind: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Vec<Stored>, StoreError> {
        let mut c = self.pool.acquire().await?;
        list(&mut c, kind, namespace).await
    }

    /// The events `f` selects, oldest first.
    pub async fn events(&self, f: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE
               ($1 = '' OR kind = $1) AND ($2 = '' OR namespace = $2) AND ($3 = '' OR name = $3)
               AND ($4 = '' OR team = $4) AND ($5 = '' OR clusters LIKE $5 ESCAPE '\\')
               AND ($6 = '' OR change_id = $6) AND ($7 = '' OR at >= $7) AND ($8 = '' OR at <= $8)
               AND ($9 = '' OR team = $9 OR team = '')
             ORDER BY id",
        )
        .bind(f.kind.clone().unwrap_or_default())
        .bind(f.namespace.clone().unwrap_or_default())
        .bind(f.name.clone().unwrap_or_default())
        .bind(f.team.clone().unwrap_or_default())
        .bind(
            f.cluster
                .as_ref()
                .map(|c| format!("%,{},%", like_literal(c)))
                .unwrap_or_default(),
        )
        .bind(f.change_id.clone().unwrap_or_default())
        .bind(f.since.clone().unwrap_or_default())
        .bind(f.until.clone().unwrap_or_default())
        .bind(f.visible_to.clone().unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// Creates a token; returns the secret, shown once (only its SHA-256 is stored).
    pub async fn create_token(
        &self,
        name: &str,
        team: &str,
        role: Role,
    ) -> Result<String, StoreError> {
        let secret = format!("atoll_{}", random_hex(24));
        sqlx::query(
            "INSERT INTO tokens (id, name, team, role, hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_uid())
        .bind(name)
        .bind(team)
        .bind(role.as_str())
        .bind(hash_token(&secret))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(secret)
    }

    /// Who holds `token`, if anyone (tokens are stored hashed).
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query("SELECT name, team, role FROM tokens WHERE hash = $1")
            .bind(hash_token(token))
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => {
                let role: String = r.try_get("role")?;
                Some(Principal {
                    name: r.try_get("name")?,
                    team: r.try_get("team")?,
                    role: role.parse().unwrap_or(Role::Reader),
                })
            }
            None => None,
        })
    }
}

fn row_to_event(r: &AnyRow) -> Result<Event, StoreError> {
    let parse = |col: &str| -> Result<Option<Value>, StoreError> {
        Ok(match r.try_get::<Option<String>, _>(col)? {
            Some(s) => Some(serde_json::from_str(&s)?),
            None => None,
        })
    };
    let clusters: String = r.try_get("clusters")?;
    Ok(Event {
        id: r.try_get("id")?,
        change_id: r.try_get("change_id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        kind: r.try_get("kind")?,
        namespace: r.try_get("namespace")?,
        name: r.try_get("name")?,
        team: r.try_get("team")?,
        message: r.try_get("message")?,
        commit: r.try_get("git_commit")?,
        clusters: clusters
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        before: parse("before_body")?,
        after: parse("after_body")?,
    })
}

/// [`Store::get`] on a given connection (inside a transaction).
pub async fn get(
    c: &mut sqlx::AnyConnection,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<Stored>, StoreError> {
    let row = sqlx::query("SELECT * FROM objects WHERE kind = $1 AND namespace = $2 AND name = $3")
        .bind(kind)
        .bind(namespace)
        .bind(name)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(row_to_stored).transpose()
}

/// Every object of `kind` (all kinds for `None`) in `namespace` (all for `None`), ordered by
/// kind, namespace and name, on a given connection.
pub async fn list(
    c: &mut sqlx::AnyConnection,
    kind: Option<&str>,
    namespace: Option<&str>,
) -> Result<Vec<Stored>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM objects WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR namespace = $2)
         ORDER BY kind, namespace, name",
    )
    .bind(kind.unwrap_or(""))
    .bind(namespace.unwrap_or(""))
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(row_to_stored).collect()
}

async fn next_version(c: &mut sqlx::AnyConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE counters SET value = value + 1 WHERE name = 'resourceVersion' RETURNING value",
    )
    .fetch_one(&mut *c)
    .await?)
}

/// An object's kind, namespace ("" when cluster-scoped) and name.
pub fn identity(body: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    (
        s(&body["kind"]),
        s(&body["metadata"]["namespace"]),
        s(&body["metadata"]["name"]),
    )
}

/// Creates `body` (apiVersion, kind, metadata.name/namespace/labels, spec); fills in uid,
/// resourceVersion, generation 1 and creationTimestamp.
pub async fn create(c: &mut sqlx::AnyConnection, mut body: Value) -> Result<Stored, StoreError> {
    let (kind, namespace, name) = identity(&body);
    if get(c, &kind, &namespace, &name).await?.is_some() {
        return Err(StoreError::AlreadyExists {
            kind,
            key: key(&namespace, &name),
        });
    }
    let rv = next_version(c).await?;
    let at = now();
    let m = &mut body["metadata"];
    m["uid"] = new_uid().into();
    m["resourceVersion"] = rv.to_string().into();
    m["generation"] = 1.into();
    m["creationTimestamp"] = at.clone().into();
    sqlx::query(
        "INSERT INTO objects (kind, namespace, name, uid, resource_version, generation, body, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&kind)
    .bind(&namespace)
    .bind(&name)
    .bind(body["metadata"]["uid"].as_str().unwrap_or("").to_string())
    .bind(rv)
    .bind(1i64)
    .bind(serde_json::to_string(&body)?)
    .bind(&at)
    .bind(&at)
    .execute(&mut *c)
    .await?;
    Ok(Stored {
        kind,
        namespace,
        name,
        resource_version: rv,
        body,
    })
}

/// Replaces an object's labels and spec. With `expected` (the resourceVersion the caller
/// read), a stale version is a [`StoreError::Conflict`]; the compare and the write are one
/// statement, so concurrent writers cannot both win.
pub async fn update(
    c: &mut sqlx::AnyConnection,
    body: Value,
    expected: Option<i64>,
) -> Result<(Stored, Stored), StoreError> {
    let (kind, namespace, name) = identity(&body);
    let Some(old) = get(c, &kind, &namespace, &name).await? else {
        return Err(StoreError::NotFound {
            kind,
            key: key(&namespace, &name),
        });
    };
    let base = expected.unwrap_or(old.resource_version);
    if base != old.resource_version {
        return Err(StoreError::Conflict {
            kind,
            key: key(&namespace, &name),
            expected: base,
            actual: old.resource_version,
        });
    }
    let rv = next_version(c).await?;
    let mut new = old.body.clone();
    new["metadata"]["labels"] = body["metadata"]["labels"].clone();
    if new["metadata"]["labels"].is_null() {
        new["metadata"].as_object_mut().map(|m| m.remove("labels"));
    }
    let spec_changed = old.body["spec"] != body["spec"];
    new["spec"] = body["spec"].clone();
    let generation = old.body["metadata"]["generation"].as_i64().unwrap_or(1) + spec_changed as i64;
    new["metadata"]["generation"] = generation.into();
    new["metadata"]["resourceVersion"] = rv.to_string().into();
    let n = sqlx::query(
        "UPDATE objects SET resource_version = $1, generation = $2, body = $3, updated_at = $4
         WHERE kind = $5 AND namespace = $6 AND name = $7 AND resource_version = $8",
    )
    .bind(rv)
    .bind(generation)
    .bind(serde_json::to_string(&new)?)
    .bind(now())
    .bind(&kind)
    .bind(&namespace)
    .bind(&name)
    .bind(base)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::Conflict {
            kind,
            key: key(&namespace, &name),
            expected: base,
            actual: -1,
        });
    }
    let stored = Stored {
        kind,
        namespace,
        name,
        resource_version: rv,
        body: new,
    };
    Ok((old, stored))
}

/// Deletes an object, optionally only at the resourceVersion the caller read.
pub async fn delete(
    c: &mut sqlx::AnyConnection,
    kind: &str,
    namespace: &str,
    name: &str,
    expected: Option<i64>,
) -> Result<Stored, StoreError> {
    let Some(old) = get(c, kind, namespace, name).await? else {
        return Err(StoreError::NotFound {
            kind: kind.into(),
            key: key(namespace, name),
        });
    };
    if let Some(e) = expected
        && e != old.resource_version
    {
        return Err(StoreError::Conflict {
            kind: kind.into(),
            key: key(namespace, name),
            expected: e,
            actual: old.resource_version,
        });
    }
    sqlx::query(
        "DELETE FROM objects WHERE kind = $1 AND namespace = $2 AND name = $3 AND resource_version = $4",
    )
    .bind(kind)
    .bind(namespace)
    .bind(name)
    .bind(old.resource_version)
    .execute(&mut *c)
    .await?;
    // A deletion is a new version of the store too (as in Kubernetes): a reader that cached
    // the objects at the old version sees it changed.
    next_version(c).await?;
    Ok(old)
}

/// The store's resourceVersion inside a transaction.
pub async fn resource_version(c: &mut sqlx::AnyConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'resourceVersion'")
            .fetch_one(&mut *c)
            .await?,
    )
}

/// Records an event; returns its id.
pub async fn record(c: &mut sqlx::AnyConnection, e: &Event) -> Result<i64, StoreError> {
    let clusters = if e.clusters.is_empty() {
        String::new()
    } else {
        format!(",{},", e.clusters.join(","))
    };
    let body = |v: &Option<Value>| v.as_ref().map(|v| v.to_string());
    Ok(sqlx::query_scalar(
        "INSERT INTO events (change_id, at, actor, action, kind, namespace, name, team, message, git_commit, clusters, before_body, after_body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
    )
    .bind(&e.change_id)
    .bind(&e.at)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.kind)
    .bind(&e.namespace)
    .bind(&e.name)
    .bind(&e.team)
    .bind(&e.message)
    .bind(&e.commit)
    .bind(clusters)
    .bind(body(&e.before))
    .bind(body(&e.after))
    .fetch_one(&mut *c)
    .await?)
}

/// A new change id.
pub fn new_change_id() -> String {
    random_hex(8)
}

impl Store {
    /// Fills in the Git commit of a change's events once Git has it.
    pub async fn set_event_commit(&self, change_id: &str, commit: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE events SET git_commit = $1 WHERE change_id = $2")
            .bind(commit)
            .bind(change_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One event by id.
    pub async fn event(&self, id: i64) -> Result<Option<Event>, StoreError> {
        let row = sqlx::query("SELECT * FROM events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_event).transpose()
    }
}
