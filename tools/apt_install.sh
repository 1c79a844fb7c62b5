#!/usr/bin/env bash
# Installs Debian packages the project needs (bubblewrap for the code sandbox, chromium for the report
# test) where they are missing. As root it uses apt-get directly, otherwise sudo if present; when
# neither works it says so and carries on: the sandbox then warns that it lacks isolation, and the
# browser test is skipped with the reason.
set -u
missing=()
for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then run=(); elif command -v sudo >/dev/null 2>&1; then run=(sudo -n); else
  echo "apt_install: cannot install ${missing[*]} (not root, no sudo)" >&2; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq && "${run[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
  || echo "apt_install: installing ${missing[*]} failed" >&2
exit 0
