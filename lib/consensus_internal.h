/* Private to the consensus files (consensus*.c): the state machine's types and
 * the helpers one concern calls in another. Not part of the public API. */
#ifndef SEQ_CONSENSUS_INTERNAL_H
#define SEQ_CONSENSUS_INTERNAL_H

#include "consensus.h"

#define STEP_MSGS_MAX (3 * SEQ_CERT_REQ_VIEWS_MAX + 64)
#define FETCHES_MAX 16        /* blocks being fetched at once */
#define GRAVE_CERTS_MAX 32

enum { K_NOTARIZE = 0, K_NULLIFY = 1, K_FINALIZE = 2, KINDS = 3 };

enum proposal_state {
    PROP_NONE = 0,
    PROP_WAITING,   /* received; parent, certificates or verification pending */
    PROP_VERIFYING, /* VERIFY emitted */
    PROP_DONE,      /* voted, or nothing more to do */
    PROP_INVALID,
};

typedef struct {
    bool has;
    bool conflict_seen; /* evidence for this signer/view/kind already kept */
    seq_hash hash;
    seq_sig sig;
} vote_slot;

typedef struct {
    uint64_t view; /* 0: slot unused */
    bool has_proposal;
    seq_hash proposal;
    uint8_t prop_state;
    vote_slot *slots[KINDS]; /* n each */
    seq_cert *certs[KINDS];  /* heap; NULL until formed or received */
    bool mine[KINDS];        /* we signed this kind in this view */
    seq_vote my_vote[KINDS];
    bool build_requested;
    uint64_t asked_from; /* first view of our last certificate request, 0: none */
    seq_hash build_parent;
} view_state;

typedef struct {
    seq_hash hash;
    uint64_t asked_ms;
    bool used;
} fetch;

typedef struct {
    uint64_t from, to; /* inclusive */
} view_run;

/* A certificate without the unused tail of its signature array. */
typedef struct packed_cert {
    uint64_t view;
    uint8_t kind;
    seq_hash hash;
    uint8_t bitmap[SEQ_BITMAP_BYTES];
    uint32_t sig_count;
    seq_sig sigs[];
} packed_cert;

typedef struct {
    uint64_t view;
    seq_hash hash;
} notarized_ref;

struct seq_consensus {
    seq_consensus_config cfg;
    uint32_t n;
    uint32_t q;
    uint64_t now;
    uint64_t view;
    uint64_t deadline;
    uint64_t max_cert_view; /* highest view with a notarization, nullification or finalization */

    uint64_t final_height;
    uint64_t final_view;
    uint64_t final_ts;
    seq_hash final_hash;
    seq_cert *final_cert; /* certificate of the last delivery */

    /* A finalization we hold but cannot deliver yet (blocks missing). */
    bool pending;
    uint64_t pending_view;
    seq_cert *pending_cert;

    view_state views[SEQ_VIEW_WINDOW];
    /* Facts about views above the last finalized one that must outlive the
     * ring: a leader may have to prove that hundreds of views in a row were
     * nullified, and may build on a notarized block from before them. */
    view_run nullified[SEQ_NULLIFIED_RUNS_MAX]; /* sorted, disjoint, not adjacent */
    uint32_t nullified_count;
    notarized_ref notarized[SEQ_BLOCKS_MAX];
    uint32_t notarized_count;
    uint64_t vote_floor; /* we never vote below this view (restart) */
    seq_block *blocks[SEQ_BLOCKS_MAX];
    uint32_t block_count;
    fetch fetches[FETCHES_MAX];
    uint32_t fetch_rr;
    uint64_t *cert_req_view;   /* per peer: our view when it last asked for certificates */
    uint32_t *cert_req_count;  /* per peer: requests answered in that view */
    uint64_t *asked_lo;        /* per peer: views [asked_lo, asked_hi) of our last CERT_REQ to it, */
    uint64_t *asked_hi;        /* whose answers may be its old votes, not a laggard's */
    /* Notarizations [0] and nullifications [1], packed, by view: the ring
     * forgets views, but a peer catching up may need to prove long runs. */
    struct packed_cert *archive[SEQ_CERT_ARCHIVE_VIEWS][2];

    /* Freed at the start of the next step: actions of this step point to them. */
    seq_block *grave_blocks[SEQ_BLOCKS_MAX + 1]; /* all held, plus the one an event adds */
    uint32_t grave_block_count;
    seq_cert *grave_certs[GRAVE_CERTS_MAX];
    uint32_t grave_cert_count;

    seq_actions *out;
    seq_msg msgs[STEP_MSGS_MAX];
    uint32_t msg_count;

    seq_vote evidence[2 * SEQ_EVIDENCE_MAX];
    uint32_t evidence_count;
    seq_consensus_status stats;
};

static inline int kind_index(int vote_kind) { return vote_kind - SEQ_VOTE_NOTARIZE; }

/* consensus.c: actions, messages, the view ring, the timer */
seq_action *cs_emit(seq_consensus *c, seq_action_kind kind);           /* appends an action to this step's output */
seq_msg *cs_new_msg(seq_consensus *c, seq_msg_kind kind);              /* a message living until the next step */
void cs_send_msg(seq_consensus *c, const seq_msg *m, int to /* -1: all */);
void cs_send_cert(seq_consensus *c, const seq_cert *cert, int to);     /* -1: all */
uint32_t cs_next_peer(seq_consensus *c);                               /* round robin, never ourselves */
view_state *cs_view_get(seq_consensus *c, uint64_t view, bool create); /* NULL: finalized or out of the ring */
const seq_cert *cs_cert_of(seq_consensus *c, uint64_t view, int k);    /* a ring certificate, or NULL */
void cs_drop(seq_consensus *c, uint32_t from, const char *why);        /* counts and logs a dropped message */

/* consensus_votes.c: vote slots, quorums, our own votes, evidence */
void cs_vote_record(seq_consensus *c, const seq_vote *v);              /* a verified vote; may form a certificate */
void cs_vote_cast(seq_consensus *c, view_state *s, int vote_kind, const seq_hash *hash, bool as_proposal,
               const seq_block *block);                           /* sign, persist, broadcast */
void cs_maybe_finalize_vote(seq_consensus *c, view_state *s);          /* [R-FINALIZE] */
bool cs_vote_in_window(const seq_consensus *c, uint64_t view);         /* above final, not too far ahead */
bool cs_vote_shape_ok(const seq_consensus *c, const seq_vote *v);      /* kind, signer and hash well formed */
void cs_on_vote(seq_consensus *c, uint32_t from, const seq_vote *v);

/* consensus_certs.c: certificates, facts beyond the ring, the archive, helping peers */
const view_run *cs_nullified_run(const seq_consensus *c, uint64_t u);  /* the run holding u, or NULL */
const seq_hash *cs_notarized_hash(const seq_consensus *c, uint64_t u); /* notarized block of view u, or NULL */
void cs_facts_prune(seq_consensus *c);                                 /* forgets facts at or below final */
void cs_certs_ask(seq_consensus *c, view_state *s, uint64_t from, uint64_t end, int to);
void cs_on_cert(seq_consensus *c, const seq_cert *cert, bool formed_here); /* a verified or formed certificate */
void cs_on_cert_msg(seq_consensus *c, uint32_t from, const seq_cert *cert);
void cs_laggard_help(seq_consensus *c, uint32_t peer, uint64_t u);     /* a peer voted in view u < ours */
bool cs_answers_our_ask(const seq_consensus *c, uint32_t peer, uint64_t u); /* u in our last CERT_REQ to peer */
void cs_on_cert_req(seq_consensus *c, uint32_t from, uint64_t view_from, uint32_t count);

/* consensus_blocks.c: the block table, the graveyard, fetches, commit */
void cs_bury_cert(seq_consensus *c, seq_cert *cert);                   /* freed at the next step */
void cs_empty_graves(seq_consensus *c);                                /* frees what the last step buried */
seq_block *cs_block_find(const seq_consensus *c, const seq_hash *hash); /* borrowed, or NULL */
bool cs_block_keep(seq_consensus *c, const seq_block *b);              /* keeps a copy; false when full */
void cs_blocks_prune(seq_consensus *c);                                /* drops blocks that can no longer matter */
void cs_fetch_ask(seq_consensus *c, fetch *f, int hint);               /* sends a BLOCK_REQ, hint < 0: any peer */
void cs_block_request(seq_consensus *c, const seq_hash *hash, int hint); /* starts a fetch once */
bool cs_commit_try(seq_consensus *c);                                  /* [R-COMMIT]; true when it delivered */
int cs_chain_complete(seq_consensus *c, const seq_hash *hash, int hint); /* 1 held, 0 fetching, -1 bad chain */
void cs_on_block(seq_consensus *c, uint32_t from, const seq_block *b);

/* consensus_propose.c: proposing as leader, checking and voting on proposals */
void cs_propose_try(seq_consensus *c);                                 /* [R-PARENT], asks the driver to BUILD */
void cs_on_payload(seq_consensus *c, const seq_event *ev);
void cs_vote_try(seq_consensus *c);                                    /* [R-PROPOSAL] */
void cs_on_verified(seq_consensus *c, const seq_event *ev);            /* [R-VOTE1] */
void cs_on_propose(seq_consensus *c, uint32_t from, const seq_msg *m);

#endif
