//! Sets the linker flags a Node.js addon needs (undefined napi symbols are resolved by Node at load time).
fn main() {
    napi_build::setup();
}
