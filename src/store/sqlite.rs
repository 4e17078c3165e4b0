//! The store in one SQLite file (rusqlite, SQLite built in): write-ahead logging, so readers and
//! the writer do not block each other; versioned migrations run when it opens. Calls run on
//! tokio's blocking threads, one at a time on one connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use mgraph_deploy_api::{
    ErrorType, ExecutionStatus, HistoryCursor, OperationKind, SecretName, StepOutcome,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    Finish, NewExecution, Page, StepRecord, Store, StoreError, Stored, TargetKey, TargetRef,
    Written, sort_key,
};

const BACKEND: &str = "sqlite";

/// How long a call waits for another connection's write to end.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The schema, one step a version; `PRAGMA user_version` is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: executions, their steps, and each target's executions by time.
    "CREATE TABLE executions (
         id TEXT PRIMARY KEY,
         started_ms INTEGER NOT NULL,
         caller TEXT,
         route TEXT NOT NULL,
         total INTEGER NOT NULL,
         targets TEXT NOT NULL,
         deadline_ms INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         finished_ms INTEGER,
         status TEXT,
         completed INTEGER,
         failed INTEGER,
         skipped INTEGER
     );
     CREATE TABLE steps (
         execution_id TEXT NOT NULL,
         step INTEGER NOT NULL,
         operation TEXT NOT NULL,
         target_key TEXT,
         target TEXT,
         scope TEXT,
         secret_name TEXT,
         outcome TEXT NOT NULL,
         error_type TEXT,
         duration_ms INTEGER NOT NULL,
         upstream_calls INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         PRIMARY KEY (execution_id, step)
     );
     CREATE TABLE target_executions (
         target_key TEXT NOT NULL,
         sort_key TEXT NOT NULL,
         execution_id TEXT NOT NULL,
         expires_at INTEGER NOT NULL,
         PRIMARY KEY (target_key, sort_key)
     );
     CREATE INDEX executions_expiry ON executions (expires_at);",
    // 2: what the service last wrote to each secret (fingerprints, never values).
    "CREATE TABLE written (
         target_key TEXT NOT NULL,
         name TEXT NOT NULL,
         target TEXT NOT NULL,
         execution_id TEXT NOT NULL,
         claim TEXT NOT NULL,
         written_ms INTEGER NOT NULL,
         fingerprint TEXT,
         settings TEXT,
         updated_at TEXT,
         PRIMARY KEY (target_key, name)
     );",
];

/// The store in the SQLite file at a path.
#[derive(Clone)]
pub struct Sqlite {
    path: PathBuf,
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite").field("path", &self.path).finish()
    }
}

fn error(e: impl std::fmt::Display) -> StoreError {
    StoreError {
        backend: BACKEND,
        message: e.to_string(),
        exists: false,
    }
}

/// Creates the database file readable by its owner only, when it does not exist (SQLite gives
/// its `-wal` and `-shm` files the database's permissions): the history names callers, targets
/// and secrets.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A failed call's error; a primary key taken (the execution's id) is `exists`.
fn call_error(e: rusqlite::Error) -> StoreError {
    let exists = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    );
    StoreError { exists, ..error(e) }
}

impl Sqlite {
    /// Opens (or creates, with its folder) the database at `path`, brings its schema up to date
    /// and deletes what expired before `now_ms`. A database written by a newer version of this
    /// service is refused, not changed.
    pub fn open(path: &Path, now_ms: u64) -> Result<Self, StoreError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .map_err(|e| error(format!("cannot create {}: {e}", folder.display())))?;
        }
        create_private(path)
            .map_err(|e| error(format!("cannot create {}: {e}", path.display())))?;
        let connection = Connection::open(path)
            .map_err(|e| error(format!("cannot open {}: {e}", path.display())))?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(error)?;
        let mode = wal(&connection).map_err(error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(error(format!(
                "{} cannot use write-ahead logging (journal mode {mode})",
                path.display()
            )));
        }
        connection
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(error)?;
        migrate(&connection).map_err(|e| error(format!("{}: {e}", path.display())))?;
        purge(&connection, now_ms).map_err(error)?;
        Ok(Self {
            path: path.to_owned(),
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection, on a blocking thread.
    fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, StoreError>> {
        let connection = self.connection.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
                work(&mut connection)
            })
            .await
            .map_err(|e| error(format!("the store's thread failed: {e}")))?
            .map_err(call_error)
        }
        .boxed()
    }
}

/// Switches to write-ahead logging; the journal mode it is in after. SQLite answers a switch
/// that meets another connection's switch "busy" at once, without waiting: it is tried again
/// for as long as a busy database is waited for.
fn wal(connection: &Connection) -> rusqlite::Result<String> {
    let started = std::time::Instant::now();
    loop {
        match connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            answer => return answer,
        }
    }
}

/// Brings the schema up to date in one write transaction, taken before the version is read:
/// two processes opening a new file at once migrate it once (the second waits, then finds it
/// done).
fn migrate(connection: &Connection) -> Result<(), String> {
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())?;
    let migrated = run_migrations(connection);
    let end = if migrated.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    connection.execute_batch(end).map_err(|e| e.to_string())?;
    migrated
}

fn run_migrations(connection: &Connection) -> Result<(), String> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| e.to_string())?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(format!(
            "its schema is version {version}, newer than this service's {}: it was written by a newer version",
            MIGRATIONS.len()
        ));
    }
    for (done, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        connection
            .execute_batch(&format!("{migration}; PRAGMA user_version = {};", done + 1))
            .map_err(|e| format!("migration {} failed: {e}", done + 1))?;
    }
    Ok(())
}

/// Deletes every record that expired before `now_ms`.
fn purge(connection: &Connection, now_ms: u64) -> rusqlite::Result<()> {
    let now = (now_ms / 1000) as i64;
    connection.execute_batch("BEGIN")?;
    connection.execute("DELETE FROM executions WHERE expires_at <= ?1", [now])?;
    connection.execute("DELETE FROM steps WHERE expires_at <= ?1", [now])?;
    connection.execute(
        "DELETE FROM target_executions WHERE expires_at <= ?1",
        [now],
    )?;
    connection.execute_batch("COMMIT")
}

fn insert_start(connection: &Connection, e: &NewExecution) -> rusqlite::Result<()> {
    // `[[key, name], ...]`
    let targets: Vec<[&str; 2]> = e
        .targets
        .iter()
        .map(|t| [t.key.as_str(), t.shown.as_str()])
        .collect();
    let targets = serde_json::to_string(&targets).expect("strings serialise");
    connection.execute(
        "INSERT INTO executions
             (id, started_ms, caller, route, total, targets, deadline_ms, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            e.id,
            e.started_ms as i64,
            e.caller,
            e.route,
            e.total as i64,
            targets,
            e.deadline_ms as i64,
            e.expires_at as i64
        ],
    )?;
    let key = sort_key(e.started_ms, &e.id);
    for target in &e.targets {
        connection.execute(
            "INSERT OR IGNORE INTO target_executions (target_key, sort_key, execution_id, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![target.key.as_str(), key, e.id, e.expires_at as i64],
        )?;
    }
    Ok(())
}

fn insert_step(
    connection: &Connection,
    id: &str,
    s: &StepRecord,
    expires_at: u64,
) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT OR REPLACE INTO steps (execution_id, step, operation, target_key, target, scope,
             secret_name, outcome, error_type, duration_ms, upstream_calls, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            id,
            s.step as i64,
            s.operation.name(),
            s.target.as_ref().map(|t| t.key.as_str()),
            s.target.as_ref().map(|t| t.shown.as_str()),
            s.scope.map(|scope| scope.as_str()),
            s.secret_name.as_ref().map(|n| n.as_str()),
            word(&s.outcome),
            s.error_type.map(ErrorType::as_str),
            s.duration_ms as i64,
            s.upstream_calls as i64,
            expires_at as i64
        ],
    )?;
    Ok(())
}

fn update_finish(connection: &Connection, id: &str, f: &Finish) -> rusqlite::Result<()> {
    connection.execute(
        "UPDATE executions SET finished_ms = ?2, status = ?3, completed = ?4, failed = ?5,
             skipped = ?6 WHERE id = ?1",
        params![
            id,
            f.finished_ms as i64,
            word(&f.status),
            f.completed as i64,
            f.failed as i64,
            f.skipped as i64
        ],
    )?;
    Ok(())
}

/// The serde name of a unit variant (`written`, `partial`).
fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("a unit variant serialises as its name")
}

/// A unit variant from its serde name; a word this version does not know reads as an error.
fn from_word<T: serde::de::DeserializeOwned>(word: &str) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(word.to_owned())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// An execution's row (its steps are read apart).
fn execution_row(row: &Row<'_>) -> rusqlite::Result<Stored> {
    let targets: String = row.get("targets")?;
    let targets: Vec<[String; 2]> = serde_json::from_str(&targets).unwrap_or_default();
    let status: Option<String> = row.get("status")?;
    let finish = match (row.get::<_, Option<i64>>("finished_ms")?, status) {
        (Some(finished_ms), Some(status)) => Some(Finish {
            finished_ms: finished_ms as u64,
            status: from_word::<ExecutionStatus>(&status)?,
            completed: row.get::<_, Option<i64>>("completed")?.unwrap_or(0) as u64,
            failed: row.get::<_, Option<i64>>("failed")?.unwrap_or(0) as u64,
            skipped: row.get::<_, Option<i64>>("skipped")?.unwrap_or(0) as u64,
        }),
        _ => None,
    };
    Ok(Stored {
        start: NewExecution {
            id: row.get("id")?,
            started_ms: row.get::<_, i64>("started_ms")? as u64,
            caller: row.get("caller")?,
            route: row.get("route")?,
            total: row.get::<_, i64>("total")? as u64,
            targets: targets
                .into_iter()
                .filter_map(|[key, shown]| TargetRef::read(&key, shown))
                .collect(),
            deadline_ms: row.get::<_, i64>("deadline_ms")? as u64,
            expires_at: row.get::<_, i64>("expires_at")? as u64,
        },
        finish,
        steps: Vec::new(),
    })
}

fn step_row(row: &Row<'_>) -> rusqlite::Result<StepRecord> {
    let target = match (
        row.get::<_, Option<String>>("target_key")?,
        row.get::<_, Option<String>>("target")?,
    ) {
        (Some(key), Some(shown)) => TargetRef::read(&key, shown),
        _ => None,
    };
    let optional_word = |column: &str| -> rusqlite::Result<Option<String>> { row.get(column) };
    Ok(StepRecord {
        step: row.get::<_, i64>("step")? as u64,
        operation: from_word::<OperationKind>(&row.get::<_, String>("operation")?)?,
        target,
        scope: optional_word("scope")?.map(|s| from_word(&s)).transpose()?,
        secret_name: optional_word("secret_name")?.and_then(|n| n.try_into().ok()),
        outcome: from_word::<StepOutcome>(&row.get::<_, String>("outcome")?)?,
        error_type: optional_word("error_type")?
            .map(|e| from_word(&e))
            .transpose()?,
        duration_ms: row.get::<_, i64>("duration_ms")? as u64,
        upstream_calls: row.get::<_, i64>("upstream_calls")? as u64,
    })
}

fn written_row(row: &Row<'_>) -> rusqlite::Result<Option<Written>> {
    let Some(target) = TargetRef::read(&row.get::<_, String>("target_key")?, row.get("target")?)
    else {
        return Ok(None);
    };
    let Ok(name) = SecretName::try_from(row.get::<_, String>("name")?) else {
        return Ok(None);
    };
    Ok(Some(Written {
        target,
        name,
        execution: row.get("execution_id")?,
        claim: row.get("claim")?,
        written_ms: row.get::<_, i64>("written_ms")? as u64,
        // A fingerprint this version cannot read is none: the next write writes.
        fingerprint: row
            .get::<_, Option<String>>("fingerprint")?
            .and_then(|f| f.try_into().ok()),
        settings: row.get("settings")?,
        updated_at: row.get("updated_at")?,
    }))
}

impl Store for Sqlite {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn begin(&self, execution: NewExecution) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            insert_start(&transaction, &execution)?;
            transaction.commit()
        })
    }

    fn step(
        &self,
        id: String,
        step: StepRecord,
        expires_at: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(move |connection| insert_step(connection, &id, &step, expires_at))
    }

    fn finish(&self, id: String, finish: Finish) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(move |connection| update_finish(connection, &id, &finish))
    }

    fn record(&self, execution: Stored) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            insert_start(&transaction, &execution.start)?;
            for step in &execution.steps {
                insert_step(
                    &transaction,
                    &execution.start.id,
                    step,
                    execution.start.expires_at,
                )?;
            }
            if let Some(finish) = &execution.finish {
                update_finish(&transaction, &execution.start.id, finish)?;
            }
            transaction.commit()
        })
    }

    fn list(
        &self,
        target: TargetKey,
        limit: usize,
        cursor: Option<HistoryCursor>,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<Page, StoreError>> {
        self.with(move |connection| {
            let now = (now_ms / 1000) as i64;
            let mut statement = connection.prepare_cached(
                "SELECT e.*, t.sort_key FROM target_executions t
                 JOIN executions e ON e.id = t.execution_id
                 WHERE t.target_key = ?1 AND t.expires_at > ?2 AND e.expires_at > ?2
                   AND (?3 IS NULL OR t.sort_key < ?3)
                 ORDER BY t.sort_key DESC LIMIT ?4",
            )?;
            let mut rows: Vec<(Stored, String)> = statement
                .query_map(
                    params![
                        target.as_str(),
                        now,
                        cursor.as_ref().map(HistoryCursor::as_str),
                        (limit + 1) as i64
                    ],
                    |row| Ok((execution_row(row)?, row.get::<_, String>("sort_key")?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next = rows
                .last()
                .filter(|_| more)
                .and_then(|(_, key)| HistoryCursor::try_from(key.clone()).ok());
            Ok(Page {
                executions: rows.into_iter().map(|(execution, _)| execution).collect(),
                next,
            })
        })
    }

    fn get(&self, id: String, now_ms: u64) -> BoxFuture<'_, Result<Option<Stored>, StoreError>> {
        self.with(move |connection| {
            let now = (now_ms / 1000) as i64;
            let Some(mut execution) = connection
                .query_row(
                    "SELECT * FROM executions WHERE id = ?1 AND expires_at > ?2",
                    params![id, now],
                    execution_row,
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut statement = connection.prepare_cached(
                "SELECT * FROM steps WHERE execution_id = ?1 AND expires_at > ?2 ORDER BY step",
            )?;
            execution.steps = statement
                .query_map(params![id, now], step_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(execution))
        })
    }

    fn claim(&self, w: Written) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(move |connection| {
            connection.execute(
                "INSERT OR REPLACE INTO written (target_key, name, target, execution_id, claim,
                     written_ms, fingerprint, settings, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    w.target.key.as_str(),
                    w.name.as_str(),
                    w.target.shown,
                    w.execution,
                    w.claim,
                    w.written_ms as i64,
                    w.fingerprint.as_ref().map(|f| f.as_str()),
                    w.settings,
                    w.updated_at
                ],
            )?;
            Ok(())
        })
    }

    fn confirm(
        &self,
        target: TargetKey,
        name: SecretName,
        claim: String,
        updated_at: String,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.with(move |connection| {
            let changed = connection.execute(
                "UPDATE written SET updated_at = ?4
                 WHERE target_key = ?1 AND name = ?2 AND claim = ?3",
                params![target.as_str(), name.as_str(), claim, updated_at],
            )?;
            Ok(changed == 1)
        })
    }

    fn written(
        &self,
        target: TargetKey,
        name: SecretName,
    ) -> BoxFuture<'_, Result<Option<Written>, StoreError>> {
        self.with(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT * FROM written WHERE target_key = ?1 AND name = ?2",
                    params![target.as_str(), name.as_str()],
                    written_row,
                )
                .optional()?
                .flatten())
        })
    }

    fn written_in(&self, target: TargetKey) -> BoxFuture<'_, Result<Vec<Written>, StoreError>> {
        self.with(move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT * FROM written WHERE target_key = ?1 ORDER BY name")?;
            let rows = statement
                .query_map([target.as_str()], written_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows.into_iter().flatten().collect())
        })
    }

    fn forget(&self, target: TargetKey, name: SecretName) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(move |connection| {
            connection.execute(
                "DELETE FROM written WHERE target_key = ?1 AND name = ?2",
                params![target.as_str(), name.as_str()],
            )?;
            Ok(())
        })
    }
}
