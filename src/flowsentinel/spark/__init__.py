"""Batch scoring of flow archives on Apache Spark (``flowsentinel spark-detect``; ``pip install 'flowsentinel[spark]'``).

The pipeline of ``detect``, spread over a cluster, in the order data flows:

* :mod:`~flowsentinel.spark.job`: the driver: reads the archive with
  Spark's own readers, ships the model, runs the stages, writes the outputs;
* :mod:`~flowsentinel.spark.rows`: the row rules of a flow file (the reasons
  of :mod:`flowsentinel.io.readers`) on one Arrow batch;
* :mod:`~flowsentinel.spark.scoring`: one partition checked and scored
  through the model's ONNX graph, opened once per Python worker;
* :mod:`~flowsentinel.spark.alerts`: EVE alert records, written by the
  writer ``detect`` uses, with suppression kept per source and class.

pyspark is imported only inside the functions that need it, so that this
package imports (and its docstrings run) without it.
"""

from .job import SparkDetectConfig, SparkDetectSummary, spark_detect, spark_session

__all__ = ["SparkDetectConfig", "SparkDetectSummary", "spark_detect", "spark_session"]
