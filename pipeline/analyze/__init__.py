"""Analyze stage: the batch analysis of a store's history (`pipeline.analyze.batch`): VEE
(`pipeline.analyze.vee`, on the rolling kernels of `pipeline.analyze.kernels`), the site
detectors (`pipeline.analyze.detectors`, with the pipeline's own clear sky,
`pipeline.analyze.clearsky`), short-term forecasts (`pipeline.analyze.forecast`) and
recommendations (`pipeline.analyze.recommendations`), per series as
`pipeline.analyze.series_analysis` chains them and `pipeline.analyze.channels` chooses."""
