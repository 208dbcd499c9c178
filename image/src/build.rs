//! `lichen-image build`: packages -> rootfs -> squashfs -> initramfs -> BOOT
//! -> DATA -> GPT disk image, plus SBOM, checksum and a compressed copy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use lichen_formats::bootenv::{BootState, EnvBlock, Slot};
use lichen_formats::gpt::Guid;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::apt::{Apt, Package, hex, sha256_file};
use crate::board::Board;
use crate::bootfs::BootFile;
use crate::disk::{Part, Placed};
use crate::images::Generated;
use crate::initramfs::Initramfs;
use crate::kmod::ModuleTree;
use crate::{elfcheck, grub, images, rootfs, secrets, tools};

/// What `build` needs besides the board.
pub struct BuildOptions {
    pub board_file: PathBuf,
    pub out: PathBuf,
    /// The statically linked lichen-init for the board's target.
    pub init_bin: PathBuf,
    /// The `lichen` binary (Kubernetes) for the board's target, installed as
    /// `/usr/bin/lichen`; the ELF check covers its libraries.
    pub lichen_bin: Option<PathBuf>,
    /// A directory made by `lichen-image secrets init`: its device part goes
    /// onto BOOT under `lichen/secrets/`.
    pub secrets: Option<PathBuf>,
    pub overlays: PathBuf,
    pub cache: PathBuf,
    pub version: String,
    pub build_id: String,
    pub epoch: u64,
    /// Rebuild even if the inputs did not change.
    pub force: bool,
}

#[derive(Serialize)]
struct Manifest<'a> {
    board: &'a str,
    version: &'a str,
    build_id: &'a str,
    source_date_epoch: u64,
    kernel: String,
    image: String,
    image_size: u64,
    rootfs_bytes: u64,
    squashfs_bytes: u64,
    initramfs_bytes: u64,
    partitions: Vec<Placed>,
}

/// Builds the image; returns the path of the `.img`.
pub fn build(o: &BuildOptions) -> Result<PathBuf> {
    let started = Instant::now();
    let board = Board::load(&o.board_file)?;
    let name = format!("lichen-{}", board.name);
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let img = o.out.join(format!("{name}.img"));
    if !o.init_bin.is_file() {
        bail!("lichen-init binary {} does not exist; build it first (make build)", o.init_bin.display());
    }
    if let Some(lichen) = &o.lichen_bin
        && !lichen.is_file()
    {
        bail!("lichen binary {} does not exist; build it first (make build)", lichen.display());
    }
    // Read before the stale check: a changed secret must rebuild the image.
    let secret_files = match &o.secrets {
        Some(dir) => secrets::boot_files(dir)?,
        None => Vec::new(),
    };
    // The applets of the air-gap busybox image (see images::host_applets).
    let applets = images::host_applets(Path::new(images::HOST_BUSYBOX))?;

    let apt = Apt::new(&o.cache, &board.arch);
    let step = |what: &str| eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());

    step("resolving packages");
    let kernel_name = apt.resolve_kernel(&board.kernel.package)?;
    // One apt-cache call for everything: kernel and bootloader first.
    let mut names = vec![kernel_name, board.bootloader.package.clone()];
    names.extend(board.packages.keys().cloned());
    let packages = apt.fetch_all(&names)?;
    let (kernel, bootloader) = (packages[0].clone(), packages[1].clone());

    // Inputs hash: skip the build when nothing changed ("stale" check).
    let inputs = inputs_hash(o, &board, &packages, &secret_files, &applets)?;
    let stamp = o.out.join(".inputs");
    if !o.force && img.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(inputs.as_str()) {
        step("image is up to date");
        return Ok(img);
    }
    let _ = std::fs::remove_file(&stamp);

    let work = o.out.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("cleaning {}", work.display()))?;
    }
    let root = work.join("rootfs");
    std::fs::create_dir_all(&root)?;

    step("laying out the root filesystem");
    for pkg in packages.iter().skip(2) {
        let spec = &board.packages[&pkg.name];
        rootfs::add_package(&root, pkg, spec)?;
    }
    rootfs::mkdirs(
        &root,
        &[
            "dev",
            "proc",
            "sys",
            "run",
            "tmp",
            "var",
            "boot",
            "mnt",
            "root",
            "etc",
            "sbin",
            "bin",
            "usr/lib/lichen",
        ],
    )?;
    rootfs::write_file(&root, "sbin/init", &std::fs::read(&o.init_bin)?, 0o755)?;
    rootfs::symlink(&root, "usr/bin/lichen-init", "/sbin/init")?;
    if let Some(lichen) = &o.lichen_bin {
        rootfs::write_file(&root, "usr/bin/lichen", &std::fs::read(lichen)?, 0o755)?;
    }
    if root.join("bin/busybox").exists() {
        rootfs::symlink(&root, "bin/sh", "busybox")?;
    }
    let common = o.overlays.join("common");
    rootfs::add_tree(&root, &common)?;
    let board_overlay = o.overlays.join(&board.name);
    if board_overlay.is_dir() {
        rootfs::add_tree(&root, &board_overlay)?;
    }
    rootfs::write_file(&root, "etc/os-release", os_release(o, &board).as_bytes(), 0o644)?;
    rootfs::add_symlinks(&root, &board.symlinks)?;

    step("baking the air-gap container images");
    let generated = images::bake(&root, &board.arch, &applets)?;

    step("selecting kernel modules");
    let kver = kernel_version(&kernel.root)?;
    let tree = ModuleTree::scan(&kernel.root.join("lib/modules").join(&kver))?;
    let board_label = format!("board {} [modules]", board.name);
    let stage1 = tree.closure(&board.modules.initramfs, &format!("{board_label} initramfs"))?;
    let stage2 = tree.closure(&board.modules.rootfs, &format!("{board_label} rootfs"))?;
    let all: std::collections::BTreeSet<String> = stage1.union(&stage2).cloned().collect();
    let moddir = format!("lib/modules/{kver}");
    for m in &all {
        let rel = &tree.modules[m].rel;
        rootfs::copy_entry(&tree.dir.join(rel), &root.join(&moddir).join(rel))?;
    }
    rootfs::write_file(&root, &format!("{moddir}/modules.dep"), tree.modules_dep(&all).as_bytes(), 0o644)?;
    rootfs::write_file(&root, &format!("{moddir}/modules.softdep"), tree.softdeps(&all).as_bytes(), 0o644)?;
    std::fs::copy(tree.dir.join("modules.builtin"), root.join(&moddir).join("modules.builtin"))
        .context("copying modules.builtin")?;
    rootfs::write_file(&root, "usr/lib/lichen/modules.load", lines(&board.modules.rootfs).as_bytes(), 0o644)?;

    step("checking that every ELF finds its libraries");
    let checked = elfcheck::check(&root)?;
    step(&format!("{checked} ELF files resolve inside the rootfs"));

    let sbom = sbom_json(&board, o, &packages, &generated)?;
    rootfs::write_file(&root, "usr/share/lichen/sbom.json", sbom.as_bytes(), 0o644)?;
    std::fs::write(o.out.join("sbom.json"), &sbom)?;
    let rootfs_bytes = tree_size(&root)?;

    step("making the squashfs root");
    let sqfs = work.join("root.squashfs");
    tools::mksquashfs(&root, &sqfs, o.epoch)?;

    step("making the initramfs");
    let mut ird = Initramfs::default();
    ird.host_file("init", &o.init_bin, 0o755)?;
    for d in ["dev", "proc", "sys", "run", "sysroot", "tmp"] {
        ird.dir(d);
    }
    ird.char_dev("dev/console", 0o600, 5, 1);
    ird.char_dev("dev/null", 0o666, 1, 3);
    let busybox = root.join("bin/busybox");
    if busybox.exists() {
        ird.host_file("bin/busybox", &busybox, 0o755)?;
        ird.symlink("bin/sh", "busybox");
    }
    for m in &stage1 {
        let rel = &tree.modules[m].rel;
        ird.host_file(&format!("{moddir}/{}", rel.display()), &tree.dir.join(rel), 0o644)?;
    }
    ird.file(&format!("{moddir}/modules.dep"), tree.modules_dep(&stage1).into_bytes(), 0o644);
    ird.file(&format!("{moddir}/modules.softdep"), tree.softdeps(&stage1).into_bytes(), 0o644);
    ird.file("etc/lichen/modules.load", lines(&board.modules.initramfs).into_bytes(), 0o644);
    ird.file("etc/initrd-release", os_release(o, &board).into_bytes(), 0o644);
    let epoch32 = u32::try_from(o.epoch).context("SOURCE_DATE_EPOCH past 2106")?;
    let initramfs = ird.to_gzip(epoch32)?;

    step("making the BOOT partition");
    let vmlinuz = std::fs::read(kernel.root.join(format!("boot/vmlinuz-{kver}")))
        .with_context(|| format!("kernel image boot/vmlinuz-{kver} missing from {}", kernel.name))?;
    let grub_dir = bootloader.root.join("usr/lib/grub").join(&board.bootloader.format);
    let early = work.join("early.cfg");
    std::fs::write(&early, grub::early_cfg())?;
    let efi = work.join(&board.bootloader.efi_binary);
    tools::grub_mkimage(&grub_dir, &board.bootloader.format, &early, &efi)?;
    let mut cmdline = board.kernel.cmdline.join(" ");
    if board.console.shell {
        cmdline.push_str(" lichen.shell=1");
    }
    let serial = board.kernel.cmdline.iter().any(|c| c.starts_with("console=ttyS"));
    let mut env = EnvBlock::new();
    BootState { active: Slot::A, trial: None, tries_left: 0 }.write_to(&mut env);
    let initramfs_len = initramfs.len() as u64;
    // The kernel beside the image: for direct-kernel boots and the harness'
    // KVM probe.
    std::fs::write(o.out.join("vmlinuz"), &vmlinuz)?;
    let files = vec![
        BootFile { path: format!("EFI/BOOT/{}", board.bootloader.efi_binary), data: std::fs::read(&efi)? },
        BootFile {
            path: "EFI/BOOT/grub.cfg".into(),
            data: grub::grub_cfg(cmdline.trim(), serial).into_bytes(),
        },
        BootFile { path: "grubenv".into(), data: env.to_bytes()?.to_vec() },
        BootFile { path: "slot-a/vmlinuz".into(), data: vmlinuz },
        BootFile { path: "slot-a/initramfs".into(), data: initramfs },
    ];
    let files: Vec<BootFile> = files.into_iter().chain(secret_files).collect();
    let seed = format!("{}:{}:{}", board.name, o.version, o.build_id);
    let volume_id = u32::from_le_bytes(Sha256::digest(seed.as_bytes())[..4].try_into()?);
    let boot_img = bootfs_build(&board, volume_id, o.epoch, &files)?;
    let boot = work.join("boot.vfat");
    std::fs::write(&boot, boot_img)?;

    step("making the DATA file system");
    // Empty: the device makes /var's directories on first boot. (Files
    // copied in with `mke2fs -d` would carry the host's ctime, which no
    // tool can pin, and break reproducibility.)
    let data = work.join("data.ext4");
    let data_uuid = Guid::derive(seed.as_bytes(), "DATA-fs").to_string().to_lowercase();
    tools::mke2fs(&data, "DATA", &data_uuid, board.partitions.data_mib, o.epoch)?;

    step("assembling the disk image");
    let p = &board.partitions;
    let parts = [
        Part {
            label: "BOOT",
            size_mib: p.boot_mib,
            field: "boot_mib",
            type_guid: Guid::EFI_SYSTEM,
            content: Some(&boot),
        },
        Part {
            label: "ROOT-A",
            size_mib: p.root_mib,
            field: "root_mib",
            type_guid: Guid::LINUX_FS,
            content: Some(&sqfs),
        },
        Part {
            label: "ROOT-B",
            size_mib: p.root_mib,
            field: "root_mib",
            type_guid: Guid::LINUX_FS,
            content: None,
        },
        Part {
            label: "DATA",
            size_mib: p.data_mib,
            field: "data_mib",
            type_guid: Guid::LINUX_FS,
            content: Some(&data),
        },
    ];
    let placed = crate::disk::write(&img, seed.as_bytes(), &parts)?;

    step("checksum and compressed copy");
    let digest = sha256_file(&img)?;
    let img_name = format!("{name}.img");
    std::fs::write(o.out.join(format!("{img_name}.sha256")), format!("{digest}  {img_name}\n"))?;
    compress(&img, &o.out.join(format!("{img_name}.gz")))?;
    let manifest = Manifest {
        board: &board.name,
        version: &o.version,
        build_id: &o.build_id,
        source_date_epoch: o.epoch,
        kernel: kver,
        image: img_name,
        image_size: std::fs::metadata(&img)?.len(),
        rootfs_bytes,
        squashfs_bytes: std::fs::metadata(&sqfs)?.len(),
        initramfs_bytes: initramfs_len,
        partitions: placed,
    };
    std::fs::write(o.out.join("manifest.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
    std::fs::remove_dir_all(&work)?;
    std::fs::write(&stamp, &inputs)?;
    step(&format!("wrote {} ({digest})", img.display()));
    Ok(img)
}

fn bootfs_build(board: &Board, volume_id: u32, epoch: u64, files: &[BootFile]) -> Result<Vec<u8>> {
    Ok(crate::bootfs::build(board.partitions.boot_mib, volume_id, epoch, files, &["slot-b"])?)
}

fn lines(items: &[String]) -> String {
    items.iter().map(|i| format!("{i}\n")).collect()
}

fn os_release(o: &BuildOptions, board: &Board) -> String {
    format!(
        "NAME=\"Lichen\"\nID=lichen\nPRETTY_NAME=\"Lichen {v}\"\nVERSION=\"{v}\"\nVERSION_ID={v}\n\
         BUILD_ID={b}\nVARIANT_ID={board}\nHOME_URL=\"https://example.invalid/lichen\"\n",
        v = o.version,
        b = o.build_id,
        board = board.name,
    )
}

/// The kernel version: the single directory under `lib/modules/`.
fn kernel_version(pkg_root: &Path) -> Result<String> {
    let dir = pkg_root.join("lib/modules");
    let mut versions: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("kernel package has no {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    versions.sort();
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        other => {
            bail!("kernel package must hold exactly one lib/modules/<version>, found {other:?}")
        }
    }
}

fn sbom_json(
    board: &Board,
    o: &BuildOptions,
    packages: &[Package],
    generated: &[Generated],
) -> Result<String> {
    #[derive(Serialize)]
    struct Sbom<'a> {
        image: String,
        version: &'a str,
        build_id: &'a str,
        packages: Vec<&'a Package>,
        lichen_init_sha256: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        lichen_sha256: Option<String>,
        /// Files the builder made from the packages (the air-gap images).
        generated: &'a [Generated],
    }
    let mut pkgs: Vec<&Package> = packages.iter().collect();
    pkgs.sort();
    let s = Sbom {
        image: format!("lichen-{}", board.name),
        version: &o.version,
        build_id: &o.build_id,
        packages: pkgs,
        lichen_init_sha256: sha256_file(&o.init_bin)?,
        lichen_sha256: o.lichen_bin.as_deref().map(sha256_file).transpose()?,
        generated,
    };
    Ok(serde_json::to_string_pretty(&s)? + "\n")
}

/// Hash of everything that goes into the image.
fn inputs_hash(
    o: &BuildOptions,
    board: &Board,
    packages: &[Package],
    secret_files: &[BootFile],
    applets: &[String],
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("{board:?}\n{}\n{}\n{}\n", o.version, o.build_id, o.epoch));
    for p in packages {
        h.update(format!("{} {} {}\n", p.name, p.version, p.sha256));
    }
    h.update(sha256_file(&o.init_bin)?);
    if let Some(lichen) = &o.lichen_bin {
        h.update(format!("lichen {}\n", sha256_file(lichen)?));
    }
    for f in secret_files {
        h.update(format!("{} {}\n", f.path, hex(&Sha256::digest(&f.data))));
    }
    h.update(applets.join(" "));
    if let Ok(me) = std::env::current_exe() {
        h.update(sha256_file(&me)?);
    }
    for dir in [o.overlays.join("common"), o.overlays.join(&board.name)] {
        if dir.is_dir() {
            for rel in rootfs::list_tree(&dir)? {
                let p = dir.join(&rel);
                h.update(rel.to_string_lossy().as_bytes());
                let meta = std::fs::symlink_metadata(&p)?;
                if meta.is_file() {
                    h.update(sha256_file(&p)?);
                } else {
                    h.update(std::fs::read_link(&p)?.to_string_lossy().as_bytes());
                }
            }
        }
    }
    Ok(hex(&h.finalize()))
}

fn tree_size(root: &Path) -> Result<u64> {
    let mut n = 0;
    for rel in rootfs::list_tree(root)? {
        n += std::fs::symlink_metadata(root.join(rel))?.len();
    }
    Ok(n)
}

fn compress(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("gz.tmp");
    let mut src = std::fs::File::open(from)?;
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&tmp)?, flate2::Compression::fast());
    std::io::copy(&mut src, &mut gz)?;
    gz.finish()?.flush()?;
    std::fs::rename(&tmp, to)?;
    Ok(())
}
