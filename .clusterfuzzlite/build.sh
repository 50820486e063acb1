#!/bin/bash -eu
# ClusterFuzzLite builds exactly as OSS-Fuzz does.
exec "$SRC/gcfuzz/scripts/oss-fuzz/build.sh"
