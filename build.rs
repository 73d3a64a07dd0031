// Placeholder: the FFI helper replaces this with the cbindgen header generation.
fn main() {}
