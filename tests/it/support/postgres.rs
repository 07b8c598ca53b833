//! A throw-away PostgreSQL database per test, when TEST_DATABASE_URL is set (for
//! example `postgres://postgres@127.0.0.1:5432/postgres`, the server to make them on).

use sqlx::{Connection, Executor, PgConnection};

pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

/// Runs a future to completion on a runtime of its own, so a test's own runtime
/// (or a `Drop`) can wait on it.
fn block_on<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(f: F) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join()
    .expect("database helper thread")
}

impl TestDatabase {
    pub fn create() -> Option<TestDatabase> {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        assert!(
            admin_url.starts_with("postgres"),
            "TEST_DATABASE_URL must be a postgres:// URL"
        );
        let name = format!(
            "posthorn_test_{}",
            posthorn::domain::hex(&rand::random::<[u8; 8]>())
        );
        let (admin, db) = (admin_url.clone(), name.clone());
        block_on(async move {
            let mut conn = PgConnection::connect(&admin)
                .await
                .expect("connect to TEST_DATABASE_URL");
            conn.execute(format!("CREATE DATABASE {db}").as_str())
                .await
                .expect("create test database");
        });
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        Some(TestDatabase {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, db) = (self.admin_url.clone(), self.name.clone());
        block_on(async move {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
                    .await;
            }
        });
    }
}

/// Every `table.column` of text in the site's PostgreSQL database holding `needle`
/// (in any case).
pub async fn text_containing(site: &super::TestSite, needle: &str) -> Vec<String> {
    let url = site.database_url();
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND data_type IN ('text', 'character varying')",
    )
    .fetch_all(&mut conn)
    .await
    .expect("columns");
    let mut found = Vec::new();
    for (table, column) in columns {
        let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE LOWER(\"{column}\") LIKE $1");
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(format!("%{needle}%"))
            .fetch_one(&mut conn)
            .await
            .expect("search");
        if n > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}
