def accuracy(scores_chosen, scores_rejected):
    wins = sum(1 for c, r in zip(scores_chosen, scores_rejected) if c > r)
    return wins / max(len(scores_chosen), 1)
