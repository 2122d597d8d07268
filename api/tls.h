/* api/tls.h -- HTTPS: the server certificate and key, the client CA of
 * mutual TLS, their checks and their reload.
 *
 * libmicrohttpd runs the TLS sessions (GnuTLS); it asks for the server's
 * certificate during each handshake through api_tls_retrieve, which hands
 * out the current set. A reload (SIGHUP) loads and checks the files into a
 * new set and swaps it in atomically: handshakes that follow get the new
 * certificate, connections open already keep theirs. Sets replaced by a
 * reload stay in memory until api_tls_free (a session may still refer to
 * them); each is a few kilobytes.
 *
 * With a client CA, every handshake asks the client for a certificate
 * (without requiring one); api_tls_client_refused checks it on the routes
 * that change things. */
#ifndef MNISTD_API_TLS_H
#define MNISTD_API_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stddef.h>

typedef struct api_tls api_tls;

/* Loads and checks the PEM files: the certificate (the server's first, its
 * chain after it), the private key, and the client CA (NULL or "": none).
 * A missing or unreadable file, a file without a certificate or key, a key
 * that does not belong to the certificate, or an expired certificate is an
 * error naming the file ("tls-cert '/etc/x.pem': ..."). The key's content
 * is never written anywhere. Makes the set current for api_tls_retrieve
 * (one api_tls per process). Returns NULL with err set. */
api_tls *api_tls_load(const char *cert, const char *key, const char *client_ca, char *err, size_t errlen);

/* Loads the same files again; on success the new set serves every
 * handshake that follows and 0 is returned with a description of the new
 * certificate in info ("subject ..., valid until ..."). On failure the
 * current set stays in use and -1 is returned with err set. Called from one
 * thread at a time. */
int api_tls_reload(api_tls *t, char *info, size_t infolen, char *err, size_t errlen);

/* "subject CN=..., issuer ..., valid until 2027-...Z" of the current certificate. */
void api_tls_describe(const api_tls *t, char *buf, size_t len);

/* The client CA file's text at startup (for libmicrohttpd's
 * MHD_OPTION_HTTPS_MEM_TRUST, which makes every handshake ask for a client
 * certificate), or NULL without a client CA. Lives as long as t. */
const char *api_tls_client_ca_pem(const api_tls *t);

/* GnuTLS's certificate retrieval callback (MHD_OPTION_HTTPS_CERT_CALLBACK):
 * the current certificate chain and key. */
int api_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                     unsigned int *pcert_length, gnutls_privkey_t *privkey);

/* 0 when the session's client certificate chain verifies against the
 * current client CA (for TLS client authentication, within its validity),
 * or when there is no client CA; otherwise 1 with the reason in why ("no
 * client certificate", "the certificate issuer is unknown", ...). */
int api_tls_client_refused(const api_tls *t, gnutls_session_t session, char *why, size_t whylen);

/* Frees t and every set it ever served. Only once no session runs (after
 * MHD_stop_daemon). NULL ignored. */
void api_tls_free(api_tls *t);

#endif
