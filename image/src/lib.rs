//! lichen-image: builds Lichen disk images from Debian packages.
//!
//! Packages come from apt (the build host is Debian bookworm); everything
//! else — the rootfs layout, kernel module selection, the ELF library check,
//! the initramfs, the FAT32 BOOT partition and the GPT — is done here, as an
//! unprivileged user, reproducibly for a given `SOURCE_DATE_EPOCH`. It also
//! bakes the air-gap container images into the rootfs and makes the fleet's
//! cluster secrets (`secrets init`), copying the device's part onto BOOT.
//! The device never carries this crate.
#![forbid(unsafe_code)]

pub mod apt;
pub mod board;
pub mod bootfs;
pub mod build;
pub mod cpio;
pub mod disk;
pub mod elfcheck;
pub mod grub;
pub mod images;
pub mod initramfs;
pub mod kmod;
pub mod rootfs;
pub mod secrets;
pub mod tools;
