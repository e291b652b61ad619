#!/usr/bin/env bash
# Rebuilds testdata/rag/eval/docs from documents Debian installs on this
# machine (man pages, /usr/share/doc, tzdata). The committed copy is what
# the retrieval evaluation reads; this script documents where each file
# came from (SOURCES.tsv: file, origin, package, licence).
# Man pages are rendered with `man` at 80 columns and cut to their first
# 2,400 characters; files named *.pdf.txt and *.docx.txt are turned into
# PDF and DOCX files by the evaluation itself, at test time.
set -euo pipefail
cd "$(dirname "$0")/.."
out=testdata/rag/eval/docs
rm -rf "$out" && mkdir -p "$out"
src=testdata/rag/eval/SOURCES.tsv
printf 'file\torigin\tpackage\tlicence\n' >"$src"

licence() { # the first License: line of a package's copyright file
  local l
  l=$(grep -m1 -i '^License:' "/usr/share/doc/$1/copyright" 2>/dev/null | sed 's/^License: *//I' || true)
  echo "${l:-see /usr/share/doc/$1/copyright}"
}
add() { # add FILE ORIGIN PACKAGE
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(licence "$3")" >>"$src"
}
man_page() { # man_page NAME PACKAGE SUFFIX
  MANWIDTH=80 man -P cat "$1" 2>/dev/null | col -bx >"$out/$1$3.full"
  head -c 2400 "$out/$1$3.full" >"$out/$1$3" && rm "$out/$1$3.full"
  add "$1$3" "man 1 $1" "$2"
}
for m in ls cp mv rm ln mkdir chmod chown touch du df sort uniq head tail cut tr wc \
         date sleep tee basename dirname seq split; do
  man_page "$m" coreutils .txt
done
for m in base64 cmp comm env factor id kill md5sum nice nohup numfmt printf tac timeout uname who; do
  man_page "$m" coreutils .txt
done
man_page diff diffutils .txt
man_page xz xz-utils .txt
man_page ssh openssh-client .txt
man_page curl curl .txt
for m in nl paste join expand fold od; do man_page "$m" coreutils .pdf.txt; done
for m in find xargs; do man_page "$m" findutils .pdf.txt; done
for m in grep; do man_page "$m" grep .pdf.txt; done
for m in sed; do man_page "$m" sed .pdf.txt; done
for m in tar; do man_page "$m" tar .docx.txt; done
for m in gzip; do man_page "$m" gzip .docx.txt; done
for m in shuf stat truncate realpath mktemp; do man_page "$m" coreutils .docx.txt; done

copy() { # copy PATH-UNDER-/usr/share/doc NAME PACKAGE
  cp "/usr/share/doc/$1" "$out/$2"
  add "$2" "/usr/share/doc/$1" "$3"
}
for f in /usr/share/doc/libffi8/html/*.html; do
  b=$(basename "$f")
  case "$b" in Index.html|index.html) continue ;; esac
  copy "libffi8/html/$b" "libffi-$b" libffi8
done
for f in installation.md reference/requirement-specifiers.md topics/authentication.md \
         topics/https-certificates.md topics/local-project-installs.md topics/repeatable-installs.md \
         cli/pip_check.rst cli/pip_uninstall.rst development/conventions.rst \
         development/architecture/upgrade-options.rst; do
  copy "python3-pip/html/$f" "pip-$(basename "$f")" python3-pip
done
copy libglib2.0-0/README.md glib-README.md libglib2.0-0
copy libpango-1.0-0/README.md pango-README.md libpango-1.0-0
copy procps/bugs.md procps-bugs.md procps
copy systemd/DISTRO_PORTING.md systemd-DISTRO_PORTING.md systemd
copy zstd/TESTING.md zstd-TESTING.md zstd
copy python3-yaml/README.md pyyaml-README.md python3-yaml
copy python3-httplib2/README.md httplib2-README.md python3-httplib2
copy libjs-underscore/README.md underscore-README.md libjs-underscore
copy dpkg/spec/protected-field.txt dpkg-protected-field.txt dpkg
copy dpkg/spec/rootless-builds.txt dpkg-rootless-builds.txt dpkg
copy dpkg/spec/frontend-api.txt dpkg-frontend-api.txt dpkg
copy base-passwd/users-and-groups.html base-passwd-users-and-groups.html base-passwd
copy libjansson4/README.rst jansson-README.rst libjansson4
copy yq/cli-doc.txt yq-cli-doc.txt yq

# Time zones (tzdata, public domain) as CSV.
{
  echo "country codes,coordinates,time zone,comments"
  grep -v '^#' /usr/share/zoneinfo/zone1970.tab | awk -F'\t' '{printf "\"%s\",%s,%s,\"%s\"\n", $1, $2, $3, $4}'
} >"$out/timezones.csv"
printf '%s\t%s\t%s\t%s\n' timezones.csv /usr/share/zoneinfo/zone1970.tab tzdata "public domain" >>"$src"
ls "$out" | wc -l
