# alumet-agent (RPM %postun; $1 = 0 on erase, 1 on upgrade): reload systemd; after an
# upgrade a running service restarts on the new binary (a stopped one stays stopped).
# On erase, rpm removes the config file unless it was edited (then it is kept as
# /etc/alumet/alumet-config.toml.rpmsave), and /var/lib/alumet stays, as RPM packages keep
# their data: `rm -rf /etc/alumet /var/lib/alumet` removes both.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart alumet-agent.service || :
    fi
fi
