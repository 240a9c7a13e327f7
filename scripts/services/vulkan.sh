#!/usr/bin/env bash
# Install a Vulkan driver for the GPU kernel tests. On machines without a GPU this is
# lavapipe (Mesa's CPU Vulkan driver): wgpu then finds an adapter named "llvmpipe".
# Idempotent: does nothing when a Vulkan ICD is already installed.
set -euo pipefail

if compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null; then
    echo "Vulkan driver already installed: $(ls /usr/share/vulkan/icd.d/)"
    exit 0
fi

if [[ "$(id -u)" != "0" ]]; then
    echo "error: run as root to install mesa-vulkan-drivers (apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1

compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null
echo "installed Vulkan drivers: $(ls /usr/share/vulkan/icd.d/)"
