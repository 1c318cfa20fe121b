/* generate MODEL.gguf PROMPT N_TOKENS: print the prompt and its greedy continuation, with no Python involved.
 *
 *   cc -std=c99 generate.c -o generate $(python -m bitgguf --cflags --libs)
 *   ./generate tinystories.gguf "Once upon a time" 32
 *
 * stdout: the prompt, then the generated text as it comes (a token's bytes may end mid-character; the next
 * token's bytes complete it). stderr: the generated token ids on one line ("tokens: 42 7 ..."), for checking.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitgguf.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT N_TOKENS\n", argv[0]);
        return 2;
    }
    const char *path = argv[1], *prompt = argv[2];
    const int n_tokens = atoi(argv[3]);
    if (bitgguf_version() / 10000 != BITGGUF_VERSION_MAJOR) {
        fprintf(stderr, "libbitgguf %s does not match this program's header (%d.x)\n", bitgguf_version_string(),
                BITGGUF_VERSION_MAJOR);
        return 1;
    }

    char err[512];
    bitgguf_model *model = NULL;
    int rc = bitgguf_model_open(path, &model, err, sizeof err);
    if (rc != BITGGUF_OK) {
        fprintf(stderr, "error (%s): %s\n", bitgguf_status_string(rc), err);
        return 1;
    }
    bitgguf_context *ctx = NULL;
    rc = bitgguf_context_new(model, NULL, &ctx, err, sizeof err);
    if (rc != BITGGUF_OK) {
        fprintf(stderr, "error (%s): %s\n", bitgguf_status_string(rc), err);
        bitgguf_model_free(model);
        return 1;
    }

    /* tokenize: ask for the size first, then fill */
    const size_t len = strlen(prompt);
    int32_t n = bitgguf_tokenize(model, prompt, len, 1, 0, NULL, 0);
    bitgguf_token *ids = NULL;
    if (n < 0 && n != INT32_MIN) {
        ids = malloc((size_t)-n * sizeof *ids);
        n = ids ? bitgguf_tokenize(model, prompt, len, 1, 0, ids, -n) : INT32_MIN;
    }
    if (n <= 0) {
        fprintf(stderr, "error: cannot tokenize the prompt (%d)\n", (int)n);
        free(ids);
        bitgguf_context_free(ctx);
        bitgguf_model_free(model);
        return 1;
    }

    fputs(prompt, stdout);
    fputs("tokens:", stderr);
    rc = bitgguf_eval(ctx, ids, n);  /* the whole prompt as one batch */
    const int32_t n_vocab = bitgguf_n_vocab(model);
    char piece[256];
    for (int i = 0; rc == BITGGUF_OK && i < n_tokens; i++) {
        bitgguf_token t = bitgguf_greedy(bitgguf_get_logits(ctx), n_vocab);
        if (bitgguf_token_is_eog(model, t)) break;
        fprintf(stderr, " %d", (int)t);
        int32_t plen = bitgguf_token_to_piece(model, t, piece, (int32_t)sizeof piece, 0);
        if (plen > 0) {
            fwrite(piece, 1, (size_t)plen, stdout);
        } else if (plen < 0) {  /* a piece longer than the buffer */
            char *big = malloc((size_t)-plen);
            if (big && bitgguf_token_to_piece(model, t, big, -plen, 0) == -plen) fwrite(big, 1, (size_t)-plen, stdout);
            free(big);
        }
        fflush(stdout);
        if (bitgguf_n_past(ctx) >= bitgguf_n_ctx(ctx)) break;  /* the context is full */
        rc = bitgguf_eval(ctx, &t, 1);
    }
    fputc('\n', stderr);
    if (rc != BITGGUF_OK) fprintf(stderr, "error (%s): %s\n", bitgguf_status_string(rc), bitgguf_context_error(ctx));

    free(ids);
    bitgguf_context_free(ctx);
    bitgguf_model_free(model);
    return rc == BITGGUF_OK ? 0 : 1;
}
