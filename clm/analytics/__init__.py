"""Customer analytics: CLV models (:mod:`clm.analytics.clv`), RFM scores and segments
(:mod:`clm.analytics.rfm`) and acquisition cohorts (:mod:`clm.analytics.cohorts`)."""
