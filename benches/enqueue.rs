//! Enqueueing: creating one issue's delivery rows for 1,000,000 subscribers in the
//! SQLite store (goal: under 5 s). The reference, measured in the same run on the
//! same database, is the bare minimum: copying the same 1,000,000 ids into a table
//! with no keys or indexes.
//!
//!     cargo bench --bench enqueue [-- SUBSCRIBERS]

use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use posthorn::domain::{EmailAddress, SubscriberStatus};
use posthorn::store::Store;
use posthorn::{App, Config};

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("posts")).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[site]\ntitle = \"bench\"\nbase_url = \"https://essays.example.com\"\nauthor = \"Bench\"\n\
         [email]\nfrom = \"Bench <bench@example.com>\"\n",
    )
    .unwrap();
    let app = App::open(Config::load(Path::new(&config)).unwrap())
        .await
        .unwrap();

    // The store itself is what is measured: the same calls the services make.
    let store = Store::open(&app.config().database.url, &app.config().base_dir)
        .await
        .unwrap();
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|i| {
                (
                    EmailAddress::parse(&format!("reader{i}@example.com")).unwrap(),
                    String::new(),
                )
            })
            .collect();
        store
            .add_subscribers(&rows, SubscriberStatus::Active, Utc::now())
            .await
            .unwrap();
    }
    let import = t.elapsed().as_secs_f64();

    let created = store.created_at().await.unwrap();
    std::fs::write(
        dir.path().join("posts/p.md"),
        format!(
            "+++\ntitle = \"p\"\ndate = \"{}\"\n+++\nbody\n",
            (created + chrono::Duration::seconds(1)).to_rfc3339()
        ),
    )
    .unwrap();
    let now = created + chrono::Duration::minutes(1);
    app.tick().sync_posts(now).await.unwrap();
    let post = app.publishing().post("p").await.unwrap();

    let t = Instant::now();
    let queued = app.publishing().enqueue(&post, now).await.unwrap().queued;
    let enqueue = t.elapsed().as_secs_f64();
    assert_eq!(queued as usize, n);

    // The reference works on the same SQLite file, over a connection of its own.
    let db = dir.path().join("subscribers/posthorn.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bench_copy (subscriber_id BIGINT)")
        .execute(&pool)
        .await
        .unwrap();
    let t = Instant::now();
    let copied =
        sqlx::query("INSERT INTO bench_copy SELECT id FROM subscribers WHERE status = 'active'")
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
    let reference = t.elapsed().as_secs_f64();
    assert_eq!(copied as usize, n);

    println!("\nenqueue benchmark, SQLite, {n} active subscribers (added in {import:.1} s)");
    println!("  create issue + {n} delivery rows   {enqueue:6.2} s  (goal < 5 s)");
    println!("  bare copy of {n} ids (reference)    {reference:6.2} s");
    println!("  ratio enqueue/reference: {:.2}", enqueue / reference);
}
