# pam-totp: the three commands of the README, plus install/uninstall, bench and packages.
PREFIX      ?= /usr/local
DESTDIR     ?=
CARGO       ?= cargo
MULTIARCH   := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null)
ifneq ($(wildcard /etc/debian_version),)
PAMDIR      ?= /usr/lib/$(MULTIARCH)/security
else
PAMDIR      ?= $(if $(wildcard /usr/lib64/security),/usr/lib64/security,/usr/lib/security)
endif
MANDIR      ?= $(PREFIX)/share/man
STATEDIR    ?= /var/lib/pam-totp

.PHONY: all build try test deps e2e install uninstall bench deb rpm fuzz valgrind clean

all: build

build:
	scripts/deps.sh build
	$(CARGO) build --release --locked

try: build
	./target/release/pam-totp try --module $(CURDIR)/target/release/libpam_totp.so

deps:
	scripts/deps.sh test

test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	scripts/lint-syscalls.sh
	$(CARGO) test --locked
	$(CARGO) clippy --locked --all-targets --features fault-injection -- -D warnings
	$(CARGO) test --locked --features fault-injection --test crash
	VALGRIND_TESTS=libpam scripts/valgrind.sh
	$(CARGO) build --release --locked
	scripts/e2e.sh

e2e:
	scripts/e2e.sh

install:
	install -d -m 0755 $(DESTDIR)$(PAMDIR) $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 target/release/libpam_totp.so $(DESTDIR)$(PAMDIR)/pam_totp.so
	install -m 0755 target/release/pam-totp $(DESTDIR)$(PREFIX)/bin/pam-totp
	install -m 0644 packaging/man/pam-totp.1 $(DESTDIR)$(MANDIR)/man1/pam-totp.1
	install -m 0644 packaging/man/pam_totp.conf.5 $(DESTDIR)$(MANDIR)/man5/pam_totp.conf.5
	install -m 0644 packaging/man/pam_totp.8 $(DESTDIR)$(MANDIR)/man8/pam_totp.8
	install -d -m 0755 $(DESTDIR)/etc/security
	test -e $(DESTDIR)/etc/security/pam_totp.conf || install -m 0644 config/pam_totp.conf $(DESTDIR)/etc/security/pam_totp.conf
	install -d -m 0700 $(DESTDIR)$(STATEDIR) $(DESTDIR)$(STATEDIR)/secrets $(DESTDIR)$(STATEDIR)/state

uninstall:
	rm -f $(DESTDIR)$(PAMDIR)/pam_totp.so $(DESTDIR)$(PREFIX)/bin/pam-totp
	rm -f $(DESTDIR)$(MANDIR)/man1/pam-totp.1 $(DESTDIR)$(MANDIR)/man5/pam_totp.conf.5 $(DESTDIR)$(MANDIR)/man8/pam_totp.8
	@echo "kept $(STATEDIR) and /etc/security/pam_totp.conf (secrets and state); remove them by hand if you mean to"

bench: build
	scripts/deps.sh bench
	$(CARGO) build --release --locked --example bench_core
	bench/run.sh

deb: build
	packaging/deb/build.sh

rpm: build
	packaging/rpm/build.sh

fuzz:
	scripts/fuzz.sh

valgrind:
	scripts/valgrind.sh

clean:
	$(CARGO) clean
