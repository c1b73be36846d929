"""Process stage: a parsed document to column batches of interval readings, one per
series: meter uploads strictly (`pipeline.process.upload`, with the compiled scanner of
`pipeline.process.scanner` as its fast path) and utility Green Button files tolerantly
(`pipeline.process.greenbutton`), on shared column primitives (`pipeline.process.columns`)
into `pipeline.process.batch.ReadingBatch`."""
