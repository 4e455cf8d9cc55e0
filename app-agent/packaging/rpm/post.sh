# alumet-agent (RPM %post; $1 = 1 on install, 2 on upgrade): creates the system user,
# applies the tmpfiles rules and reloads systemd. It does not enable or start the service.
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers alumet-agent.conf || echo "alumet-agent: systemd-sysusers failed: create the system user alumet yourself" >&2
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
    systemd-tmpfiles --create alumet-agent.conf || echo "alumet-agent: systemd-tmpfiles could not apply alumet-agent.conf now; it applies at boot" >&2
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
if [ "$1" -eq 1 ]; then
    echo "alumet-agent is installed but not started. Edit /etc/alumet/alumet-config.toml, then:"
    echo "    systemctl enable --now alumet-agent"
fi
