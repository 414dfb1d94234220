//! [`SearchParams`]: the ranking parameters of the search engine (see [`super::index`]).

/// How many steps of neighbours a memory's context can reach.
pub(crate) const CONTEXT_STEPS: usize = 3;

/// Ranking parameters of the search engine; the defaults are tuned values.
///
/// ```
/// use mcp_api::store::SearchParams;
///
/// let params = SearchParams::default().with_min_relevance(0.0);
/// assert_eq!(params.min_relevance, 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct SearchParams {
    /// BM25 term-frequency saturation.
    pub k1: f32,
    /// Length normalisation of the memory's own text.
    pub own_b: f32,
    /// Length normalisation of the neighbour fields.
    pub neighbour_b: f32,
    /// Weight of the memories just before and after (0 turns context off).
    pub near_weight: f32,
    /// Weight of the memories two steps away.
    pub far_weight: f32,
    /// Weight of the memories three steps away.
    pub third_weight: f32,
    /// Weight of terms related to the query's words (synonyms, more general
    /// terms and kinds, from WordNet), which count in a memory's own text
    /// only; 0 turns query expansion off.
    pub related_weight: f32,
    /// Neighbours further apart in time than this are not context.
    pub burst_gap_ms: i64,
    /// Hits scoring below this share of the query's full score are dropped.
    pub min_relevance: f32,
    /// Hits found only through their neighbours (none of the query's words in
    /// their own text) are dropped below this share of the best hit's score.
    pub context_floor: f32,
}

impl Default for SearchParams {
    /// Tuned on LoCoMo conversations 1–5 (`cargo bench -p benches --bench recall`);
    /// recall is flat around these values (±0.3 points for k1 0.6–0.8, b ±0.1,
    /// context weights ±0.1).
    fn default() -> Self {
        Self {
            k1: 0.8,
            own_b: 0.2,
            neighbour_b: 0.5,
            near_weight: 0.5,
            far_weight: 0.35,
            third_weight: 0.0,
            related_weight: 0.25,
            burst_gap_ms: 30 * 60 * 1000,
            min_relevance: 0.15,
            context_floor: 0.45,
        }
    }
}

impl SearchParams {
    /// Sets BM25's `k1`.
    #[must_use]
    pub fn with_k1(mut self, k1: f32) -> Self {
        self.k1 = k1;
        self
    }

    /// Sets the length normalisation of the own text and of the neighbour fields.
    #[must_use]
    pub fn with_b(mut self, own_b: f32, neighbour_b: f32) -> Self {
        self.own_b = own_b;
        self.neighbour_b = neighbour_b;
        self
    }

    /// Sets the weights of the neighbours one, two and three steps away.
    #[must_use]
    pub fn with_context_weights(mut self, near: f32, far: f32, third: f32) -> Self {
        self.near_weight = near;
        self.far_weight = far;
        self.third_weight = third;
        self
    }

    pub(crate) fn context_weights(&self) -> [f32; CONTEXT_STEPS] {
        [self.near_weight, self.far_weight, self.third_weight]
    }

    /// How many steps of context have a weight.
    pub(crate) fn context_steps(&self) -> usize {
        self.context_weights()
            .iter()
            .rposition(|weight| *weight > 0.0)
            .map_or(0, |last| last + 1)
    }

    /// Sets the weight of terms related to the query's words (0: no expansion).
    #[must_use]
    pub fn with_related_weight(mut self, related_weight: f32) -> Self {
        self.related_weight = related_weight;
        self
    }

    /// Sets the longest time between two memories of one burst of writes.
    #[must_use]
    pub fn with_burst_gap_ms(mut self, burst_gap_ms: i64) -> Self {
        self.burst_gap_ms = burst_gap_ms;
        self
    }

    /// Sets the relevance floor (a share of the query's full score).
    #[must_use]
    pub fn with_min_relevance(mut self, min_relevance: f32) -> Self {
        self.min_relevance = min_relevance;
        self
    }

    /// Sets the floor of hits found through context only (a share of the best hit).
    #[must_use]
    pub fn with_context_floor(mut self, context_floor: f32) -> Self {
        self.context_floor = context_floor;
        self
    }
}
