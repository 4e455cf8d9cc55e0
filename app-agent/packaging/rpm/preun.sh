# alumet-agent (RPM %preun; $1 = 0 on erase, 1 on upgrade): on erase, stop and disable
# the service (SIGTERM: the agent writes what it has measured before it exits).
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl --no-reload disable --now alumet-agent.service || :
fi
