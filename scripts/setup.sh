# Set up onsei on a fresh Debian machine, idempotently; sourced by ./onsei and ./run-tests.
# Installs Debian packages (tests only), then into .venv: torch==2.13.0 (CPU) FIRST, then onsei.
# A stamp file makes a second run take well under a second.
set -euo pipefail

ONSEI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ONSEI_VENV:-$ONSEI_ROOT/.venv}"
TORCH_VERSION="2.13.0"

onsei_log() { printf 'onsei setup: %s\n' "$*" >&2; }

onsei_apt() {  # onsei_apt CHECK:PACKAGE ... installs the packages whose CHECK fails:
  # CHECK is a command name, or lib<name>.so.N for a shared library
  local missing=() pair check
  for pair in "$@"; do
    check="${pair%%:*}"
    if [[ "$check" == lib*.so* ]]; then
      ldconfig -p 2>/dev/null | grep -qF "$check" || missing+=("${pair#*:}")
    else
      command -v "$check" >/dev/null 2>&1 || missing+=("${pair#*:}")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  onsei_log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

onsei_venv() {  # onsei_venv EXTRAS  e.g. "" or "test"
  local extras="$1" python stamp want
  if [ ! -x "$VENV/bin/python" ]; then
    python="$(command -v python3.11 || command -v python3)"
    onsei_log "creating $VENV with $($python --version)"
    "$python" -m venv "$VENV"
  fi
  stamp="$VENV/.onsei-installed"  # lines "<pyproject hash> [<extras>]" of what is installed
  local hash
  hash="$(sha256sum < "$ONSEI_ROOT/pyproject.toml" | cut -c1-16)"
  if [ -f "$stamp" ] && { grep -qxF -- "$hash [$extras]" "$stamp" \
      || { [ -z "$extras" ] && grep -q -- "^$hash " "$stamp"; }; }; then
    return 0  # up to date (an install with extras also serves a plain run)
  fi
  local pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
  if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    onsei_log "installing torch==$TORCH_VERSION (CPU)"
    "${pip[@]}" "torch==$TORCH_VERSION" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  fi
  onsei_log "installing onsei${extras:+[$extras]} into $VENV"
  "${pip[@]}" -e "$ONSEI_ROOT${extras:+[$extras]}" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  # resemblyzer's GE2E speaker encoder (diarization), without its declared dependencies
  # (webrtcvad and the obsolete "typing" backport): see pyproject.toml
  if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('resemblyzer') != '0.1.4')" 2>/dev/null; then
    onsei_log "installing resemblyzer==0.1.4 (--no-deps)"
    "${pip[@]}" --no-deps "resemblyzer==0.1.4" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  fi
  "$VENV/bin/python" -c "import onsei.cli" || { onsei_log "installation failed"; return 1; }
  local torch_now
  torch_now="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
  case "$torch_now" in
    "$TORCH_VERSION"*) ;;
    *) onsei_log "torch changed to $torch_now (expected $TORCH_VERSION+cpu)"; return 1 ;;
  esac
  { grep -- "^$hash " "$stamp" 2>/dev/null || true; echo "$hash [$extras]"; } > "$stamp.new"
  mv "$stamp.new" "$stamp"
}
