/* The etcd client against one etcd with TLS, client-certificate auth and username/password
 * auth, set up as ../../docs/etcd-client.md describes: certificates made here with openssl (a
 * server cert with SAN IP:127.0.0.1 and EKU serverAuth+clientAuth, a client cert with an
 * EMPTY common name), users and roles created through the gateway. Tokens live 2 s, so the
 * client must authenticate again by itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_etcd_client.h"
#include "registry/etcd.h"

static struct fx_etcd etcd;
static char *dir, *ca, *cert, *key, *other_ca, *server_crt, *server_key;
static const char *etcd_args[10];

static void run_ok(const char *const argv[])
{
	struct fx_run r;
	fx_run(&r, 20000, argv);
	if (r.status != 0)
		fail_msg("%s failed (%d): %s", argv[0], r.status, r.err);
	fx_run_free(&r);
}

static char *at(const char *name)
{
	return fx_path(dir, name);
}

/* An EC key and a certificate for subj signed by the CA (self-signed when ca_crt is NULL). */
static void make_cert(const char *name, const char *subj, const char *ext, const char *ca_name)
{
	char *k = xasprintf("%s/%s.key", dir, name), *crt = xasprintf("%s/%s.crt", dir, name);
	char *csr = xasprintf("%s/%s.csr", dir, name), *extf = xasprintf("%s/%s.ext", dir, name);
	fx_write_file(extf, ext);
	if (!ca_name) {
		const char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
				       "-nodes", "-keyout", k, "-out", crt, "-days", "2", "-subj", subj,
				       "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign,cRLSign", NULL };
		run_ok(argv);
	} else {
		char *cak = xasprintf("%s/%s.key", dir, ca_name), *cac = xasprintf("%s/%s.crt", dir, ca_name);
		const char *req[] = { "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
				      "-nodes", "-keyout", k, "-out", csr, "-subj", subj, NULL };
		run_ok(req);
		const char *sign[] = { "openssl", "x509", "-req", "-in", csr, "-CA", cac, "-CAkey", cak, "-set_serial", "4242",
				       "-days", "2", "-out", crt, "-extfile", extf, NULL };
		run_ok(sign);
		free(cak);
		free(cac);
	}
	free(k);
	free(crt);
	free(csr);
	free(extf);
}

/* A gateway call with curl and the client certificate; returns the body (caller frees). */
static char *gateway(const char *path, const char *body, const char *token)
{
	char *url = xasprintf("%s%s", etcd.url, path);
	char *auth = xasprintf("Authorization: %s", token ? token : "");
	const char *argv[] = { "curl", "-s", "--cacert", ca, "--cert", cert, "--key", key, "-H", auth, url, "-d", body, NULL };
	struct fx_run r;
	fx_run(&r, 10000, argv);
	free(url);
	free(auth);
	free(r.err);
	return r.out;
}

static void gateway_ok(const char *path, const char *body)
{
	char *out = gateway(path, body, NULL);
	if (!strstr(out, "\"header\""))
		fail_msg("%s %s: %s", path, body, out);
	free(out);
}

static int group_setup(void **state)
{
	(void)state;
	dir = fx_tmpdir("pki");
	make_cert("ca", "/CN=veltrix-test-ca", "", NULL);
	make_cert("other-ca", "/CN=someone-else", "", NULL);
	make_cert("server", "/CN=etcd", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n", "ca");
	/* empty CN: with auth on, a CN makes the gateway refuse every call (FACTS 2.8 gotcha B) */
	make_cert("client", "/O=veltrix-test", "subjectAltName=DNS:veltrix-client\nextendedKeyUsage=clientAuth\n", "ca");
	ca = at("ca.crt");
	other_ca = at("other-ca.crt");
	cert = at("client.crt");
	key = at("client.key");
	server_crt = at("server.crt");
	server_key = at("server.key");
	const char *args[] = { "--cert-file", server_crt, "--key-file", server_key, "--trusted-ca-file", ca,
			       "--client-cert-auth", "--auth-token-ttl", "2", NULL };
	memcpy(etcd_args, args, sizeof(args));
	etcd.extra_args = etcd_args;
	etcd.tls_ca = ca;
	etcd.tls_cert = cert;
	etcd.tls_key = key;
	fx_etcd_start(&etcd);
	gateway_ok("/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"rootpw\"}");
	gateway_ok("/v3/auth/role/add", "{\"name\":\"root\"}");
	gateway_ok("/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}");
	gateway_ok("/v3/auth/user/add", "{\"name\":\"app\",\"password\":\"apppw\"}");
	gateway_ok("/v3/auth/role/add", "{\"name\":\"approle\"}");
	gateway_ok("/v3/auth/role/grant",
		   "{\"name\":\"approle\",\"perm\":{\"permType\":\"READWRITE\",\"key\":\"L3N2Yy8=\",\"range_end\":\"L3N2YzA=\"}}");
	gateway_ok("/v3/auth/user/grant", "{\"user\":\"app\",\"role\":\"approle\"}");
	gateway_ok("/v3/auth/enable", "{}");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fx_etcd_free(&etcd);
	free(ca);
	free(other_ca);
	free(cert);
	free(key);
	free(server_crt);
	free(server_key);
	free(dir);
	return 0;
}

static struct etcd_client *secure_client(const char *user, const char *password, const char *trust)
{
	struct etcd_opts o = { .tls_ca = trust, .tls_cert = cert, .tls_key = key, .user = user, .password = password };
	return fxc_client(etcd.url, &o);
}

static void test_mtls_auth_watch_and_token_refresh(void **state)
{
	(void)state;
	struct etcd_client *c = secure_client("app", "apppw", ca);
	struct vxerr err;
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/svc/", .prefix = true };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	fxc_watch_ready(c, &fw);
	struct etcd_put_req put = { .key = "/svc/web/a", .value = "1" };
	assert_int_equal(etcd_put(c, &put, NULL, &err), 0);
	struct fxc_watch_wait ww = { &fw, 1 };
	assert_true(fxc_run_until(c, fxc_has_events, &ww, 5000));

	/* outside the role's range */
	struct etcd_resp r;
	struct etcd_put_req outside = { .key = "/other", .value = "x" };
	assert_int_equal(etcd_put(c, &outside, &r, &err), -1);
	assert_int_equal(r.code, ETCD_PERMISSION_DENIED);
	assert_non_null(strstr(err.msg, "permission denied"));
	etcd_resp_release(&r);

	/* tokens die after 2 idle seconds here (proved with a token of our own), yet the client
	 * carries on: it authenticates again after etcd's 401 */
	char *auth = gateway("/v3/auth/authenticate", "{\"name\":\"app\",\"password\":\"apppw\"}", NULL);
	char *tok = strstr(auth, "\"token\":\"");
	assert_non_null(tok);
	tok += 9;
	*strchr(tok, '"') = '\0';
	fxc_run_for(c, 3200);
	char *stale = gateway("/v3/kv/range", "{\"key\":\"L3N2Yy93ZWIvYQ==\"}", tok);
	assert_non_null(strstr(stale, "invalid auth token"));
	free(stale);
	free(auth);
	put.value = "2";
	assert_int_equal(etcd_put(c, &put, NULL, &err), 0);
	struct etcd_range_req get = { .key = "/svc/web/a" };
	assert_int_equal(etcd_range(c, &get, &r, &err), 0);
	assert_string_equal(r.kvs[0].value, "2");
	etcd_resp_release(&r);
	ww.n = 2;
	if (!fxc_run_until(c, fxc_has_events, &ww, 5000))
		fail_msg("watch: %zu events, %d downs (%s), resync %d (%s)", fw.n, fw.downs, fw.last_down, fw.resynced,
			 fw.resync_detail);
	assert_false(fw.resynced);

	/* a lease and its keepalive work with auth too */
	assert_int_equal(etcd_lease_grant(c, 5, 0, &r, &err), 0);
	int64_t id = r.lease_id;
	etcd_resp_release(&r);
	assert_int_equal(etcd_lease_revoke(c, id, NULL, &err), 0);
	fxc_watch_release(&fw);
	etcd_client_free(c);
}

static void test_wrong_password(void **state)
{
	(void)state;
	struct etcd_client *c = secure_client("app", "not-the-password", ca);
	struct vxerr err;
	struct etcd_resp r;
	struct etcd_range_req get = { .key = "/svc/web/a" };
	assert_int_equal(etcd_range(c, &get, &r, &err), -1);
	assert_int_equal(r.code, ETCD_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "authenticate: etcdserver: authentication failed, invalid user ID or password"));
	assert_non_null(strstr(err.msg, etcd.url));
	etcd_resp_release(&r);
	/* a watch cannot start either: reported, not retried forever */
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/svc/", .prefix = true };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	struct fxc_watch_wait ww = { &fw, 1 };
	assert_true(fxc_run_until(c, fxc_has_resync, &ww, 5000));
	assert_int_equal(fw.resync_reason, ETCD_RESYNC_CANCELED);
	assert_non_null(strstr(fw.resync_detail, "authentication failed"));
	fxc_watch_release(&fw);
	etcd_client_free(c);
}

static void test_tls_errors(void **state)
{
	(void)state;
	struct vxerr err;
	struct etcd_resp r;
	struct etcd_range_req get = { .key = "/svc/web/a" };
	/* a server certificate from a CA we do not trust */
	struct etcd_client *c = secure_client("app", "apppw", other_ca);
	assert_int_equal(etcd_range(c, &get, &r, &err), -1);
	assert_int_equal(r.code, ETCD_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "etcd unreachable: tried https://127.0.0.1:"));
	assert_non_null(strstr(err.msg, "TLS: server certificate not accepted"));
	etcd_resp_release(&r);
	etcd_client_free(c);
	/* no client certificate: the server refuses the handshake */
	struct etcd_opts o = { .tls_ca = ca, .user = "app", .password = "apppw" };
	c = fxc_client(etcd.url, &o);
	assert_int_equal(etcd_range(c, &get, &r, &err), -1);
	assert_int_equal(r.code, ETCD_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "TLS: the server refused our client certificate"));
	etcd_resp_release(&r);
	etcd_client_free(c);
	/* plain http to the TLS port */
	char *plain = xasprintf("http://%s", etcd.url + strlen("https://"));
	c = fxc_client(plain, NULL);
	assert_int_equal(etcd_range(c, &get, &r, &err), -1);
	assert_int_equal(r.code, ETCD_UNAVAILABLE);
	etcd_resp_release(&r);
	etcd_client_free(c);
	free(plain);
	/* a missing CA file is named */
	struct etcd_opts bad = { .tls_ca = "/nonexistent/ca.crt" };
	c = fxc_client(etcd.url, &bad);
	assert_int_equal(etcd_range(c, &get, &r, &err), -1);
	assert_non_null(strstr(err.msg, "TLS setup"));
	etcd_resp_release(&r);
	etcd_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mtls_auth_watch_and_token_refresh),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_tls_errors),
	};
	return cmocka_run_group_tests_name("etcd_secure", tests, group_setup, group_teardown);
}
