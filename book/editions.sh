#!/usr/bin/env bash
# The book's two editions: English, from book/src, and Korean, from the same
# sources translated by book/po/ko.po (gettext, through mdbook-i18n-helpers).
#
# Usage:
#   bash book/editions.sh build [DEST]  English into DEST (default book/build),
#                                       Korean into DEST/ko; any mdbook warning
#                                       is an error
#   bash book/editions.sh pot [DIR]     extract the English messages into
#                                       DIR/messages.pot (default book/po)
#   bash book/editions.sh update        re-extract book/po/messages.pot and merge
#                                       it into ko.po: new messages come in
#                                       untranslated, changed ones fuzzy
#   bash book/editions.sh serve [PORT]  serve both editions on 127.0.0.1:PORT,
#                                       rebuilding on change
set -euo pipefail

book=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
po="$book/po"
# The tools setup.sh installs, even from a shell whose PATH lacks them.
export PATH="$PATH:$HOME/.local/bin:${CARGO_HOME:-$HOME/.cargo}/bin"

# What the Korean edition changes besides the text: the language (which
# makes mdbook-gettext pick po/ko.po and sets <html lang>), and the title,
# which is configuration rather than Markdown.
korean_edition=(
    MDBOOK_BOOK__LANGUAGE=ko
    "MDBOOK_BOOK__TITLE=eBPF 워크북"
    "MDBOOK_BOOK__DESCRIPTION=eBPF를 장마다 직접 실습하며 배우는 책. 실습은 커널이 고정된 VM에서 채점된다"
)

require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "editions.sh: \`$tool\` is not installed; run ./setup.sh to install the workbook's tools" >&2
            exit 2
        }
    done
}

# mdbook_quiet ARGS...: runs mdbook, shows its output, and fails when it
# printed a warning (a missing include is only a warning to mdbook).
mdbook_strict() {
    local out
    out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }
    echo "$out"
    if grep -q WARN <<<"$out"; then
        echo "editions.sh: mdbook printed warnings: fix them" >&2
        return 1
    fi
}

build_english() { mdbook_strict mdbook build "$book" --dest-dir "$1"; }
build_korean() { mdbook_strict env "${korean_edition[@]}" mdbook build "$book" --dest-dir "$1"; }

build() {
    local dest
    dest=$(realpath -m "${1:-$book/build}")
    require mdbook mdbook-gettext
    # English first: mdbook empties its destination, and the Korean edition
    # lives inside it.
    build_english "$dest"
    build_korean "$dest/ko"
}

pot() {
    local dir
    dir=$(realpath -m "${1:-$po}")
    require mdbook mdbook-xgettext
    # Line numbers would change the file on every edit above a message;
    # the file name is enough to find it.
    MDBOOK_OUTPUT='{"xgettext": {"pot-file": "messages.pot", "granularity": 0}}' \
        mdbook_strict mdbook build "$book" --dest-dir "$dir" >/dev/null
    # The creation date would change the file on every run (the field
    # itself must stay: mdbook-gettext requires it).
    sed -i 's/^"POT-Creation-Date: .*/"POT-Creation-Date: \\n"/' "$dir/messages.pot"
    echo "messages extracted to $dir/messages.pot" >&2
}

update() {
    require msgmerge
    pot "$po"
    msgmerge --quiet --update --backup=none --no-wrap "$po/ko.po" "$po/messages.pot"
    msgfmt --check --statistics --output-file=/dev/null "$po/ko.po"
}

serve() {
    local port=${1:-3000} dest="$book/build" server
    require mdbook mdbook-gettext
    build "$dest" >/dev/null
    echo "The book is at http://127.0.0.1:$port (Korean: http://127.0.0.1:$port/ko/)"
    # mdbook serves book/build and rebuilds the English edition on every
    # change, emptying book/build as it does; the loop below puts the Korean
    # edition back whenever it is missing or older than the English one or
    # than its translation.
    mdbook serve "$book" --hostname 127.0.0.1 --port "$port" &
    server=$!
    trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT
    trap 'exit 130' INT TERM
    while kill -0 "$server" 2>/dev/null; do
        if [ ! -f "$dest/ko/index.html" ] || [ "$dest/index.html" -nt "$dest/ko/index.html" ] ||
            [ "$po/ko.po" -nt "$dest/ko/index.html" ]; then
            sleep 0.5
            build_korean "$dest/ko" >/dev/null && echo "Korean edition rebuilt" >&2 || true
        fi
        sleep 1
    done
}

command=${1:-build}
shift || true
case "$command" in
build | pot | update | serve) "$command" "$@" ;;
*)
    echo "usage: bash book/editions.sh build [DEST] | pot [DIR] | update | serve [PORT]" >&2
    exit 2
    ;;
esac
