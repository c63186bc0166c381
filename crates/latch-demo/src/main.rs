//! `latch-demo`: the demo site. `cargo run --release -p latch-demo`.

fn main() {
    latch_demo::serve::main();
}
