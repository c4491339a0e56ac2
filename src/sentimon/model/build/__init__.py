"""The reproducible build of the bundled model (`sentimon model build`)."""
