// The migrations are embedded by `sqlx::migrate!`: a change to them must rebuild.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
