//! `sqlx::migrate!` embeds the migration files at compile time, but cargo does not know
//! they are inputs: without this a new or edited migration is silently left out of the
//! next build.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
