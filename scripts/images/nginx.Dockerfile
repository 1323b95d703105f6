# Stands in for the official nginx:1 image: nginx in the foreground, logs to stdout/stderr,
# /etc/nginx/conf.d/*.conf included, curl present for healthchecks.
FROM opskit-test/services-base:bookworm
RUN rm -f /etc/nginx/sites-enabled/default \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log \
 && mkdir -p /etc/nginx/conf.d /usr/share/nginx/html \
 && printf 'server {\n  listen 80 default_server;\n  location / { return 200 "ok\\n"; }\n}\n' > /etc/nginx/conf.d/default.conf
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
