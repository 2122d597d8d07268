# Prometheus from Debian's package, for the compose test
# (tests/integration/test_docker.sh) where no image registry is reachable:
# it stands in for prom/prometheus with the same entry point and paths.
FROM debian:bookworm-slim
# The package's postinst would start the service inside the build.
# linter ignore=ER0012
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d \
    && chmod 0755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
    && install -d -o prometheus -g prometheus /prometheus
USER prometheus
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
