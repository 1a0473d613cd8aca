"""Kura's side of `shammie-bench clio`: the same steps through Kura 0.5.4's classes.

  python kura_pipeline.py TEXTS.json MINILM_DIR     (step times go to $CLIO_BENCH_OUT)

- embed: kura.embedding.SentenceTransformerEmbeddingModel (all-MiniLM-L6-v2 from the
  given folder, Kura's default batch size);
- k-means: kura.k_means.KmeansClusteringMethod, which runs scikit-learn's KMeans; its
  number of clusters is ceil(N / clusters_per_group), set here to give k = round(sqrt(N/2))
  as Shammie's default (the call is made on the same item dicts Kura builds);
- map: umap-learn's UMAP with the parameters of Kura's HDBUMAP (2 components, 15
  neighbours, min_dist 0.1, cosine) on 2,000 evenly spaced summaries, 200 epochs;
- hierarchy: the k stand-in cluster names (each cluster's first member) embedded and
  grouped by KMeans into ceil(k/8) parents.
"""

import asyncio
import json
import math
import os
import sys
import time

import numpy as np


def main():
    texts = json.load(open(sys.argv[1]))
    minilm = sys.argv[2]
    n = len(texts)
    import torch

    torch.set_num_threads(int(os.environ.get("TORCH_NUM_THREADS", "2")))
    from kura.embedding import SentenceTransformerEmbeddingModel
    from kura.k_means import KmeansClusteringMethod

    t = time.perf_counter()
    model = SentenceTransformerEmbeddingModel(model_name=minilm, device="cpu")
    vectors = asyncio.run(model.embed(texts))
    embed = time.perf_counter() - t

    t = time.perf_counter()
    k = max(2, round(math.sqrt(n / 2)))
    # ceil(n / cpg) == k for cpg = n / k (a float is what Kura's formula divides by).
    method = KmeansClusteringMethod(clusters_per_group=n / k)
    items = [{"item": i, "embedding": v} for i, v in enumerate(vectors)]
    clusters = method.cluster(items)
    kmeans = time.perf_counter() - t

    t = time.perf_counter()
    from umap import UMAP

    m = min(n, 2000)
    sample = np.array([vectors[i * n // m] for i in range(m)])
    UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine", n_epochs=200).fit_transform(sample)
    umap_s = time.perf_counter() - t

    t = time.perf_counter()
    names = [texts[members[0]] for members in clusters.values() if members]
    name_vectors = asyncio.run(model.embed(names))
    from sklearn.cluster import KMeans

    KMeans(n_clusters=max(1, math.ceil(len(names) / 8))).fit(np.array(name_vectors))
    hierarchy = time.perf_counter() - t

    json.dump(
        {"embed": embed, "kmeans": kmeans, "map": umap_s, "hierarchy": hierarchy, "k": len(clusters)},
        open(os.environ["CLIO_BENCH_OUT"], "w"),
    )


if __name__ == "__main__":
    main()
