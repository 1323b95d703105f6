# Stands in for the official redis:7 image: redis-server in the foreground on 6379, reachable from
# other containers, redis-cli for healthchecks.
FROM opskit-test/services-base:bookworm
RUN mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
