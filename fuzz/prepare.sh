# Sourced from fuzz/ by smoke.sh and long-run.sh: installs cargo-fuzz if it is missing, and
# sets `sanitizer` from FUZZ_SANITIZER (default none), letting stable rustc build with one
# when one is asked for.
sanitizer="${FUZZ_SANITIZER:-none}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi
