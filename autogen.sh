#!/bin/sh
# autogen.sh - regenerate the autotools build files from a clean clone
set -e
cd "$(dirname "$0")"
autoreconf -fi
