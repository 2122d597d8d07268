/* Unit tests of the TLS certificate sets (api/tls.c) on certificates made
 * by tests/tools/mkcerts.sh (openssl): loading and its errors, the key and
 * certificate that do not match, expiry, a reload that swaps the set given
 * to handshakes and one that fails and keeps it, and the client check
 * without a session. Runs under ASan in `make test`'s sanitizer pass, so
 * every path here is checked for leaks. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "api/tls.h"
#include "tests/unit/test.h"

/* The DER of the first certificate api_tls_retrieve hands a handshake. */
static int served(gnutls_datum_t *out)
{
    gnutls_pcert_st *pc = NULL;
    unsigned int n = 0;
    gnutls_privkey_t key = NULL;
    if (api_tls_retrieve(NULL, NULL, 0, NULL, 0, &pc, &n, &key) != 0 || n == 0 || !key)
        return -1;
    *out = pc[0].cert;
    return 0;
}

/* 1 when the served certificate is the one in the PEM file. */
static int serves(const char *pem_path)
{
    gnutls_datum_t d, pem;
    if (served(&d) != 0 || gnutls_load_file(pem_path, &pem) < 0)
        return 0;
    gnutls_x509_crt_t crt;
    gnutls_datum_t der = {NULL, 0};
    int same = 0;
    if (gnutls_x509_crt_init(&crt) == 0) {
        if (gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) == 0 &&
            gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) == 0)
            same = der.size == d.size && memcmp(der.data, d.data, d.size) == 0;
        gnutls_x509_crt_deinit(crt);
    }
    gnutls_free(der.data);
    gnutls_free(pem.data);
    return same;
}

static int copy(const char *from, const char *to)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    return system(cmd);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mnistd-test-tls.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        TEST_SKIP("tls", "no temporary directory");
        return 0;
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "bash tests/tools/mkcerts.sh '%s/pki' >/dev/null 2>&1", tmpdir);
    if (system(cmd) != 0) {
        TEST_SKIP("tls", "tests/tools/mkcerts.sh failed (is openssl installed?)");
        return 0;
    }
    char err[2048], info[600];
    char pki[300];
    snprintf(pki, sizeof(pki), "%s/pki", tmpdir);
#define P(name) (snprintf(bufp[bi = (bi + 1) % 6], sizeof bufp[0], "%s/%s", pki, name), bufp[bi])
    char bufp[6][400];
    int bi = 0;

    TEST_BEGIN("tls_load_errors_name_the_file");
    {
        struct { const char *cert, *key, *ca, *want; } bad[] = {
            {"nope.pem", "server.key", NULL, "tls-cert '"},
            {"server.pem", "nope.key", NULL, "tls-key '"},
            {"server.pem", "server2.key", NULL, "does not belong to the certificate"},
            {"expired.pem", "expired.key", NULL, "the certificate expired on 2020-01-02T00:00:00Z"},
            {"server.key", "server.key", NULL, "no PEM certificate"},
            {"server.pem", "server.pem", NULL, "not an unencrypted PEM private key"},
            {"server.pem", "server.key", "server.key", "tls-client-ca '"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char c[400], k[400], a[400];
            snprintf(c, sizeof c, "%s/%s", pki, bad[i].cert);
            snprintf(k, sizeof k, "%s/%s", pki, bad[i].key);
            snprintf(a, sizeof a, "%s/%s", pki, bad[i].ca ? bad[i].ca : "");
            err[0] = '\0';
            api_tls *t = api_tls_load(c, k, bad[i].ca ? a : NULL, err, sizeof(err));
            CHECK(!t && strstr(err, bad[i].want) && !strstr(err, "PRIVATE KEY"), "case %zu: %s", i, err);
            api_tls_free(t);
        }
    }
    TEST_END();

    char cert[400], key[400];
    snprintf(cert, sizeof cert, "%s/live.crt", tmpdir);
    snprintf(key, sizeof key, "%s/live.key", tmpdir);
    copy(P("server.pem"), cert);
    copy(P("server.key"), key);
    api_tls *t = api_tls_load(cert, key, P("ca.pem"), err, sizeof(err));

    TEST_BEGIN("tls_load_and_serve");
    CHECK(t != NULL, "%s", err);
    CHECK(t && serves(P("server.pem")), "the handshake does not get server.pem");
    CHECK(t && api_tls_client_ca_pem(t) && strstr(api_tls_client_ca_pem(t), "BEGIN CERTIFICATE"), "no CA text");
    if (t) {
        api_tls_describe(t, info, sizeof(info));
        CHECK(strstr(info, "CN=mnistd test server") && strstr(info, "valid until"), "%s", info);
    }
    TEST_END();

    TEST_BEGIN("tls_reload_swaps");
    copy(P("server2.pem"), cert);
    copy(P("server2.key"), key);
    CHECK(t && api_tls_reload(t, info, sizeof(info), err, sizeof(err)) == 0, "%s", err);
    CHECK(serves(P("server2.pem")), "the handshake does not get server2.pem after the reload");
    CHECK(strstr(info, "CN=mnistd test server2"), "%s", info);
    TEST_END();

    TEST_BEGIN("tls_failed_reload_keeps_the_set");
    copy(P("server.key"), key);  /* the first key with the second certificate */
    CHECK(t && api_tls_reload(t, info, sizeof(info), err, sizeof(err)) == -1 && strstr(err, "does not belong"),
          "%s", err);
    CHECK(serves(P("server2.pem")), "a failed reload changed the certificate");
    unlink(cert);
    CHECK(t && api_tls_reload(t, info, sizeof(info), err, sizeof(err)) == -1 && strstr(err, "cannot open"),
          "%s", err);
    CHECK(serves(P("server2.pem")), "a missing file changed the certificate");
    TEST_END();

    TEST_BEGIN("tls_client_without_session_refused");
    {
        char why[300];
        CHECK(t && api_tls_client_refused(t, NULL, why, sizeof(why)) == 1 && strcmp(why, "no client certificate") == 0,
              "%s", why);
    }
    TEST_END();
    api_tls_free(t);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", tmpdir);
    TEST_EXIT();
}
