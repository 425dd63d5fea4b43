#!/usr/bin/env bash
# Turn a fresh Debian/Ubuntu VM (x86_64 or arm64: Oracle Cloud Always Free, GCP e2-micro, ...) into a
# running GameLens behind HTTPS. Usable as cloud-init user data, or run as root over ssh:
#
#   curl -fsSL <raw link to this file> | sudo GAMELENS_REPO=<git url> bash
#
# env: GAMELENS_REPO    git URL of this project (required unless /opt/gamelens already holds it)
#      GAMELENS_DOMAIN  the public name; default <public-ip>.sslip.io (a name that resolves to the IP)
#      GAMELENS_DIR     install directory (default /opt/gamelens)
# It installs Docker, builds the image on the VM (so it matches the VM's CPU architecture), starts
# GameLens + Caddy (automatic certificates) with restart on boot, installs a daily backup of the data
# volume (7 kept, under /var/backups/gamelens), and prints the admin key once.
set -euo pipefail
DIR=${GAMELENS_DIR:-/opt/gamelens}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq ca-certificates curl git docker.io >/dev/null
apt-get install -y -qq docker-compose-v2 >/dev/null 2>&1 || apt-get install -y -qq docker-compose-plugin >/dev/null
systemctl enable --now docker

if [ ! -d "$DIR/.git" ]; then
  [ -n "${GAMELENS_REPO:-}" ] || { echo "set GAMELENS_REPO to this project's git URL" >&2; exit 1; }
  git clone --depth 1 "$GAMELENS_REPO" "$DIR"
fi
cd "$DIR"

# Small VMs (1 GB RAM) need swap to build the image and to load large files.
if [ "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" -lt 2000000 ] && ! swapon --show | grep -q .; then
  fallocate -l 2G /swapfile && chmod 600 /swapfile && mkswap /swapfile >/dev/null && swapon /swapfile
  echo '/swapfile none swap sw 0 0' >> /etc/fstab
fi

new_key=""
if [ ! -f .env ]; then
  ip=$(curl -fsS https://api.ipify.org || hostname -I | awk '{print $1}')
  domain=${GAMELENS_DOMAIN:-$(echo "$ip" | tr . -).sslip.io}
  new_key="glk_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  umask 077
  printf 'GAMELENS_DOMAIN=%s\nGAMELENS_ADMIN_KEY=%s\n' "$domain" "$new_key" > .env
fi

docker compose --profile https up -d --build

cat > /etc/cron.daily/gamelens-backup <<CRON
#!/bin/sh
# Daily copy of the GameLens data volume; GameLens stops for the seconds the copy takes (consistent files).
set -e
mkdir -p /var/backups/gamelens
cd $DIR
docker compose stop gamelens
docker run --rm -v gamelens_gamelens-data:/data:ro -v /var/backups/gamelens:/backup debian:bookworm-slim \
  tar czf /backup/gamelens-\$(date +%F).tgz -C /data .
docker compose start gamelens
ls -1t /var/backups/gamelens/gamelens-*.tgz | tail -n +8 | xargs -r rm --
CRON
chmod 755 /etc/cron.daily/gamelens-backup

. ./.env
echo
echo "GameLens is starting at https://$GAMELENS_DOMAIN/ (the certificate takes a minute the first time)."
if [ -n "$new_key" ]; then
  echo "Admin key (shown once; it is also in $DIR/.env, readable by root only):"
  echo "    $new_key"
fi
