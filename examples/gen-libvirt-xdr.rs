//! Writes src/wire/xdr/libvirt_tables.rs from libvirt's protocol
//! definitions in third_party/libvirt-protocol/:
//! `cargo run --example gen-libvirt-xdr` (from the repository root).
//! Re-run after updating those files from a newer libvirt.

use std::path::Path;

use ldm_sniff::wire::xdr::lang;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("src/wire/xdr/libvirt_tables.rs");
    match lang::generate_libvirt(root) {
        Ok(text) => {
            if let Err(e) = std::fs::write(&out, text) {
                eprintln!("gen-libvirt-xdr: {}: {e}", out.display());
                std::process::exit(1);
            }
            println!("wrote {}", out.display());
        }
        Err(message) => {
            eprintln!("gen-libvirt-xdr: {message}");
            std::process::exit(1);
        }
    }
}
