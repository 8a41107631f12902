"""The tables `benchmarks.pq_attention` prints and stores, from its results.

Speed per history length and path, the retriever's export scorers, quality
of exact vs PQ selection, and the users whose history is longer than the
PQ shortlist.
"""

from __future__ import annotations

from offline_eval import reporting


def speed_table(speed: list[dict]) -> str:
  """Each long-history path's best setting against exact selection."""

  def setting(run):
    return f"{run['compiled']}, {run['chunk']}/call"

  return reporting.markdown_table(
      ["histories", "length", "path", "best setting", "s / batch",
       "speedup vs exact", "top-K overlap", "history MiB read / batch"],
      [[row["histories"], row["length"], name, setting(run),
        f"{run['seconds']:.3f}",
        f"{row['exact']['seconds'] / run['seconds']:.1f}x",
        f"{run['top_k_overlap']:.3f}",
        f"{run.get('history_bytes', row['exact_history_bytes']) / 2**20:.1f}"]
       for row in speed
       for name, run in [("exact", row["exact"]), *row["pq"].items()]])


def quality_table(quality: dict, modes: list[str], rerank_factors: list[int],
                  top_k: int) -> str:
  """Ranking metrics and top-K overlap of each selection mode."""
  return reporting.markdown_table(
      ["selection", "NDCG@10", "HR@10", "MRR", "sampled AUC",
       "top-K overlap (histories > K)",
       f"top-K overlap (histories > {max(rerank_factors) * top_k})"],
      [[mode] + [f"{quality[mode][name]:.4f}"
                 for name in ("ndcg@10", "hr@10", "mrr", "sampled_auc")] +
       ([f"{quality['overlap'][mode][name]:.3f}"
         for name in ("histories_over_k", "histories_over_max_shortlist")]
        if mode != "exact" else ["1", "1"]) for mode in modes])


def shortlist_table(quality: dict, modes: list[str]) -> str:
  """Where the shortlist is shorter than the history: exact vs PQ."""
  return reporting.markdown_table(
      ["test history", "selection", "shortlist", "users over shortlist",
       "top-K overlap (them)", "NDCG@10 exact / PQ (them)",
       "sampled AUC exact / PQ (them)", "NDCG@10 exact / PQ (all users)"],
      [[f"{run['history_length']} (median {run['median_length']:.0f})", mode,
        run[mode]["shortlist"], f"{run[mode]['users_over_shortlist']} / "
        f"{run['users']}"] + ([
            f"{run[mode]['top_k_overlap_over_shortlist']:.3f}",
            f"{run[mode]['exact_over_shortlist']['ndcg@10']:.4f} / "
            f"{run[mode]['pq_over_shortlist']['ndcg@10']:.4f}",
            f"{run[mode]['exact_over_shortlist']['sampled_auc']:.4f} / "
            f"{run[mode]['pq_over_shortlist']['sampled_auc']:.4f}"]
            if run[mode]["users_over_shortlist"] else ["–"] * 3) + [
            f"{run['exact']['ndcg@10']:.4f} / "
            f"{run[mode]['all_users']['ndcg@10']:.4f}"]
       for run in quality["shortlist_below_history"]
       for mode in modes[1:]])


def scorer_table(scorer_speed: list[dict]) -> str:
  """The export scorers' best settings."""
  return reporting.markdown_table(
      ["scorer", "selection", "length (MovieLens-drawn)", "best setting",
       "s / batch", "speedup vs score_selected exact"],
      [[row["scorer"], row["mode"], row["length"], f"{row['chunk']}/call",
        f"{row['seconds']:.3f}", f"{row['speedup']:.1f}x"]
       for row in scorer_speed])
