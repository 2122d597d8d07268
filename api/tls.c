/* api/tls.c -- the server certificate, its key and the client CA: see
 * tls.h. Parsing the PEM and DER is GnuTLS's; this file reads the files,
 * checks what they hold against each other and the clock, and keeps the
 * sets handshakes take their certificate from. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/x509.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/tls.h"

/* A PEM file larger than this is not a certificate, key or CA bundle. */
#define TLS_FILE_MAX (4u << 20)
/* Certificates of a chain (ours, or a client's) considered. */
#define TLS_CHAIN_MAX 16

/* One loaded set: what a handshake needs, and what checks clients. */
typedef struct tls_set {
    gnutls_pcert_st pcert[TLS_CHAIN_MAX];
    unsigned int npcert;
    gnutls_privkey_t key;
    gnutls_x509_trust_list_t ca;  /* NULL: no client CA */
    char desc[512];               /* the certificate, for the log */
    struct tls_set *older;        /* the set this one replaced (kept, see tls.h) */
} tls_set;

struct api_tls {
    char cert_path[1024], key_path[1024], ca_path[1024];
    char *ca_pem;                 /* the client CA at startup, NUL-terminated */
    tls_set *newest;              /* the current set, head of the list of all */
};

/* The set every handshake takes its certificate from: one server per
 * process, and GnuTLS's callback has no argument of ours. */
static _Atomic(tls_set *) current;

/* Reads a whole regular file into a NUL-terminated buffer (*out, the
 * caller's to free; *len without the NUL). what names the setting in
 * errors. The buffer is wiped by the caller when it held a key. */
static int read_pem(const char *what, const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s '%.900s': cannot open: %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s '%.900s': not a regular file", what, path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > TLS_FILE_MAX) {
        snprintf(err, errlen, "%s '%.900s': %lld bytes, more than a PEM file of certificates or a key "
                 "(%u)", what, path, (long long)st.st_size, TLS_FILE_MAX);
        close(fd);
        return -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(err, errlen, "%s '%.900s': out of memory", what, path);
        close(fd);
        return -1;
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(err, errlen, "%s '%.900s': cannot read: %s", what, path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static void time_text(time_t t, char *buf, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Checks that a certificate is within its validity now: an expired one is
 * an error naming the file; one not yet valid too (a client would refuse
 * it as well). */
static int check_validity(gnutls_x509_crt_t crt, const char *what, const char *path, char *err, size_t errlen)
{
    time_t now = time(NULL), until = gnutls_x509_crt_get_expiration_time(crt),
           from = gnutls_x509_crt_get_activation_time(crt);
    char when[32];
    if (until != (time_t)-1 && until < now) {
        time_text(until, when, sizeof(when));
        snprintf(err, errlen, "%s '%.900s': the certificate expired on %s", what, path, when);
        return -1;
    }
    if (from != (time_t)-1 && from > now) {
        time_text(from, when, sizeof(when));
        snprintf(err, errlen, "%s '%.900s': the certificate is not valid before %s", what, path, when);
        return -1;
    }
    return 0;
}

/* "subject ..., issuer ..., valid until ..." */
static void describe(gnutls_x509_crt_t crt, char *buf, size_t len)
{
    char subject[200] = "?", issuer[200] = "?", until[32] = "?";
    size_t n = sizeof(subject);
    if (gnutls_x509_crt_get_dn(crt, subject, &n) < 0)
        snprintf(subject, sizeof(subject), "?");
    n = sizeof(issuer);
    if (gnutls_x509_crt_get_issuer_dn(crt, issuer, &n) < 0)
        snprintf(issuer, sizeof(issuer), "?");
    time_t t = gnutls_x509_crt_get_expiration_time(crt);
    if (t != (time_t)-1)
        time_text(t, until, sizeof(until));
    snprintf(buf, len, "subject %s, issuer %s, valid until %s", subject, issuer, until);
}

/* 1 when the certificate's public key is the key's. */
static int key_matches(gnutls_x509_crt_t crt, gnutls_privkey_t key)
{
    gnutls_pubkey_t a = NULL, b = NULL;
    gnutls_datum_t da = {NULL, 0}, db = {NULL, 0};
    int same = 0;
    if (gnutls_pubkey_init(&a) == 0 && gnutls_pubkey_init(&b) == 0 &&
        gnutls_pubkey_import_x509(a, crt, 0) == 0 && gnutls_pubkey_import_privkey(b, key, 0, 0) == 0 &&
        gnutls_pubkey_export2(a, GNUTLS_X509_FMT_DER, &da) == 0 &&
        gnutls_pubkey_export2(b, GNUTLS_X509_FMT_DER, &db) == 0)
        same = da.size == db.size && memcmp(da.data, db.data, da.size) == 0;
    gnutls_free(da.data);
    gnutls_free(db.data);
    if (a)
        gnutls_pubkey_deinit(a);
    if (b)
        gnutls_pubkey_deinit(b);
    return same;
}

static void set_free(tls_set *s)
{
    if (!s)
        return;
    for (unsigned int i = 0; i < s->npcert; i++)
        gnutls_pcert_deinit(&s->pcert[i]);
    if (s->key)
        gnutls_privkey_deinit(s->key);
    if (s->ca)
        gnutls_x509_trust_list_deinit(s->ca, 1);
    free(s);
}

/* Loads the client CA bundle into a trust list; every certificate in it
 * must be within its validity. */
static int load_ca(tls_set *s, const char *path, char **pem_out, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    if (read_pem("tls-client-ca", path, &pem, &len, err, errlen) != 0)
        return -1;
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned int)len};
    gnutls_x509_crt_t *crts = NULL;
    unsigned int n = 0;
    int rc = gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || n == 0) {
        snprintf(err, errlen, "tls-client-ca '%.900s': no PEM certificate (%s)", path,
                 rc < 0 ? gnutls_strerror(rc) : "empty");
        free(pem);
        return -1;
    }
    int ret = 0;
    for (unsigned int i = 0; i < n && ret == 0; i++)
        ret = check_validity(crts[i], "tls-client-ca", path, err, errlen);
    if (ret == 0 && (gnutls_x509_trust_list_init(&s->ca, 0) < 0 ||
                     gnutls_x509_trust_list_add_cas(s->ca, crts, n, 0) < 0)) {
        snprintf(err, errlen, "tls-client-ca '%.900s': cannot build the trust list", path);
        ret = -1;
    }
    if (ret == 0) {
        gnutls_free(crts);  /* the trust list owns the certificates now */
    } else {
        for (unsigned int i = 0; i < n; i++)
            gnutls_x509_crt_deinit(crts[i]);
        gnutls_free(crts);
    }
    if (ret == 0 && pem_out)
        *pem_out = pem;
    else
        free(pem);
    return ret;
}

/* Loads and checks one set from the three files. */
static tls_set *set_load(const api_tls *t, char **ca_pem, char *err, size_t errlen)
{
    tls_set *s = calloc(1, sizeof(*s));
    char *cert = NULL, *key = NULL;
    size_t certlen = 0, keylen = 0;
    gnutls_x509_crt_t *crts = NULL;
    unsigned int n = 0;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (read_pem("tls-cert", t->cert_path, &cert, &certlen, err, errlen) != 0 ||
        read_pem("tls-key", t->key_path, &key, &keylen, err, errlen) != 0)
        goto error;
    gnutls_datum_t dc = {(unsigned char *)cert, (unsigned int)certlen};
    int rc = gnutls_x509_crt_list_import2(&crts, &n, &dc, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || n == 0) {
        snprintf(err, errlen, "tls-cert '%.900s': no PEM certificate (%s)", t->cert_path,
                 rc < 0 ? gnutls_strerror(rc) : "empty");
        n = 0;
        goto error;
    }
    if (n > TLS_CHAIN_MAX) {
        snprintf(err, errlen, "tls-cert '%.900s': %u certificates; at most %d (the server's and its chain)",
                 t->cert_path, n, TLS_CHAIN_MAX);
        goto error;
    }
    if (check_validity(crts[0], "tls-cert", t->cert_path, err, errlen) != 0)
        goto error;
    gnutls_datum_t dk = {(unsigned char *)key, (unsigned int)keylen};
    if (gnutls_privkey_init(&s->key) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(s->key, &dk, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        /* GnuTLS's reason only: never a byte of the key */
        snprintf(err, errlen, "tls-key '%.900s': not an unencrypted PEM private key (%s)", t->key_path,
                 gnutls_strerror(rc));
        goto error;
    }
    if (!key_matches(crts[0], s->key)) {
        snprintf(err, errlen, "tls-key '%.900s' does not belong to the certificate in tls-cert '%.900s'",
                 t->key_path, t->cert_path);
        goto error;
    }
    unsigned int np = n;
    if (gnutls_pcert_import_x509_list(s->pcert, crts, &np, 0) < 0) {
        snprintf(err, errlen, "tls-cert '%.900s': cannot use the certificates", t->cert_path);
        goto error;
    }
    s->npcert = np;
    describe(crts[0], s->desc, sizeof(s->desc));
    if (t->ca_path[0] && load_ca(s, t->ca_path, ca_pem, err, errlen) != 0)
        goto error;
    for (unsigned int i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    free(cert);
    memset(key, 0, keylen);
    free(key);
    return s;
error:
    for (unsigned int i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    free(cert);
    if (key) {
        memset(key, 0, keylen);
        free(key);
    }
    set_free(s);
    return NULL;
}

api_tls *api_tls_load(const char *cert, const char *key, const char *client_ca, char *err, size_t errlen)
{
    api_tls *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(t->cert_path, sizeof(t->cert_path), "%s", cert);
    snprintf(t->key_path, sizeof(t->key_path), "%s", key);
    snprintf(t->ca_path, sizeof(t->ca_path), "%s", client_ca ? client_ca : "");
    t->newest = set_load(t, &t->ca_pem, err, errlen);
    if (!t->newest) {
        free(t);
        return NULL;
    }
    atomic_store(&current, t->newest);
    return t;
}

int api_tls_reload(api_tls *t, char *info, size_t infolen, char *err, size_t errlen)
{
    tls_set *s = set_load(t, NULL, err, errlen);
    if (!s)
        return -1;
    s->older = t->newest;
    t->newest = s;
    atomic_store(&current, s);
    snprintf(info, infolen, "%s", s->desc);
    return 0;
}

void api_tls_describe(const api_tls *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s", t->newest->desc);
}

const char *api_tls_client_ca_pem(const api_tls *t)
{
    return t->ca_pem;
}

int api_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                     unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    (void)session;
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    tls_set *s = atomic_load(&current);
    if (!s)
        return -1;
    *pcert = s->pcert;
    *pcert_length = s->npcert;
    *privkey = s->key;
    return 0;
}

int api_tls_client_refused(const api_tls *t, gnutls_session_t session, char *why, size_t whylen)
{
    (void)t;
    tls_set *s = atomic_load(&current);
    if (!s || !s->ca)
        return 0;
    unsigned int n = 0;
    const gnutls_datum_t *peers = session ? gnutls_certificate_get_peers(session, &n) : NULL;
    if (!peers || n == 0) {
        snprintf(why, whylen, "no client certificate");
        return 1;
    }
    if (n > TLS_CHAIN_MAX)
        n = TLS_CHAIN_MAX;
    gnutls_x509_crt_t crts[TLS_CHAIN_MAX];
    unsigned int k = 0;
    int refused = 0;
    for (; k < n; k++) {
        if (gnutls_x509_crt_init(&crts[k]) < 0)
            break;
        if (gnutls_x509_crt_import(crts[k], &peers[k], GNUTLS_X509_FMT_DER) < 0) {
            gnutls_x509_crt_deinit(crts[k]);
            break;
        }
    }
    if (k < n) {
        snprintf(why, whylen, "the client certificate cannot be parsed");
        refused = 1;
    } else {
        gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
        unsigned int status = 0;
        int rc = gnutls_x509_trust_list_verify_crt2(s->ca, crts, n, &purpose, 1, 0, &status, NULL);
        if (rc < 0 || status != 0) {
            gnutls_datum_t txt = {NULL, 0};
            if (rc < 0)
                snprintf(why, whylen, "the client certificate cannot be verified: %s", gnutls_strerror(rc));
            else if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0) == 0)
                snprintf(why, whylen, "%s", (const char *)txt.data);
            else
                snprintf(why, whylen, "the client certificate is not trusted");
            size_t w = strlen(why);
            while (w > 0 && why[w - 1] == ' ')
                why[--w] = '\0';
            gnutls_free(txt.data);
            refused = 1;
        }
    }
    for (unsigned int i = 0; i < k; i++)
        gnutls_x509_crt_deinit(crts[i]);
    return refused;
}

void api_tls_free(api_tls *t)
{
    if (!t)
        return;
    atomic_store(&current, NULL);
    for (tls_set *s = t->newest; s;) {
        tls_set *older = s->older;
        set_free(s);
        s = older;
    }
    free(t->ca_pem);
    free(t);
}
