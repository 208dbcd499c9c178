//! `lichen-init`: as PID 1 named `/init`, stage 1; as PID 1 otherwise,
//! stage 2; as any other process, a small command line.

use lichen_init::{stage1, stage2, status, sys};

fn usage() -> ! {
    eprintln!(
        "usage: lichen-init <command>\n\n\
         commands:\n  status     services, slot and versions\n  reboot     orderly reboot\n  \
         poweroff   orderly power off\n  version    print the version"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if rustix::process::getpid().is_init() {
        if args.first().map(String::as_str) == Some("/init") {
            stage1_main();
        }
        stage2::main();
    }
    lichen_init::log::quiet();
    match args.get(1).map(String::as_str) {
        Some("status") => match std::fs::read_to_string(status::PATH) {
            Ok(s) => print!("{s}"),
            Err(e) => {
                eprintln!("lichen-init: cannot read {}: {e} (is lichen-init PID 1 here?)", status::PATH);
                std::process::exit(1);
            }
        },
        Some("reboot") => signal(libc::SIGTERM),
        Some("poweroff") => signal(libc::SIGUSR2),
        Some("version") => println!("lichen-init {}", env!("CARGO_PKG_VERSION")),
        _ => usage(),
    }
}

fn signal(sig: i32) {
    if let Err(e) = sys::signals::send(1, sig) {
        eprintln!("lichen-init: cannot signal PID 1: {e}");
        std::process::exit(1);
    }
}

fn stage1_main() -> ! {
    let mut k = sys::linux::Linux;
    stage1::early_mounts(&mut k);
    lichen_init::log::to_console("/dev/console");
    lichen_init::rescue::install_panic_hook();
    lichen_init::info!("Lichen {} stage 1 (initramfs)", env!("CARGO_PKG_VERSION"));
    match stage1::run(&mut k) {
        Ok(never) => match never {},
        Err(e) => lichen_init::rescue::rescue(&lichen_init::log::chain(&e)),
    }
}
