//! Writes every generated capture and captures/README.md:
//! `cargo run --example gen-captures` (from the repository root).

use std::fs;
use std::path::Path;

use ldm_sniff::synth::captures;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let generated = captures::all();
    let broken = captures::broken();
    for (name, bytes) in generated.iter().map(|g| (g.name, &g.bytes)).chain(broken.iter().map(|b| (b.name, &b.bytes))) {
        let path = root.join(name);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(&path, bytes)?;
        println!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    fs::write(root.join("README.md"), captures::readme(&generated, &broken))?;
    println!("wrote {}", root.join("README.md").display());
    Ok(())
}
