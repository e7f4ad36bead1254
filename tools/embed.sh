#!/bin/sh
# Writes a C file defining `const char NAME[]` with the bytes of FILE.
set -eu
name=$1 file=$2
printf '/* Generated from %s by tools/embed.sh. */\n' "$file"
printf 'extern const char %s[];\nconst char %s[] = {\n' "$name" "$name"
od -An -v -tx1 "$file" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/    /'
printf '    0x00};\n'
