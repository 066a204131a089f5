# The metafor side of benchmarks/revman_bench.py (issue 13, item 4).
#
# Usage: Rscript revman_metafor.R UNITS.csv OUT.csv [COPIES]
#
# UNITS.csv is written by revman_bench.py: one row per study of every unit
# (an analysis, or one subgroup where RevMan's weights are per subgroup) that
# meta pools, with the settings meta inferred from the export (measure,
# method, model, confidence level) and the raw data. Inferring them is meta's
# work and is not repeated here. Per unit, timed in-process (system.time
# around the loop only; R start-up, package load, reading and splitting the
# CSV are outside):
#   1. per-study effects: escalc() for RR / OR / RD / Peto OR / MD with
#      RevMan's conventions (0.5 added to every cell of a study with a zero
#      cell, none for Peto; RD from the raw proportions; RR = 1 when every
#      participant of both arms has the event); SMD (RevMan's approximate Hedges' g, not
#      metafor's), GIV and O-E rows use meta's yi / vi as given;
#   2. the review's pooled model: rma.mh (MH fixed; MH random = DL with Q
#      about the MH estimate, as RevMan), rma.peto (Peto), rma(method="FE"
#      | "DL" | "REML") for inverse variance;
#   3. units with k >= 2: the 2025 re-analysis rma(method="REML",
#      test="knha"), confint() for the Q-profile CI of tau2 (meta computes it
#      too) and predict() for the prediction interval.
# REML fits use converged settings (CONV), as meta converges its own: at
# metafor's default threshold (1e-5) tau2 differs from the optimum by up to
# ~1e-2 relative, and the comparison would not be of the same numbers.
# COPIES (default 1) repeats the whole loop, for the replicated corpus.
# Prints "ELAPSED <seconds> UNITS <n> FAILED <n>" and writes OUT.csv.

args <- commandArgs(trailingOnly = TRUE)
copies <- if (length(args) >= 3) as.integer(args[3]) else 1L
suppressMessages(library(metafor))

d <- read.csv(args[1], stringsAsFactors = FALSE)
units <- split(d, factor(d$unit, levels = unique(d$unit)))
nu <- length(units)
res <- data.frame(unit = names(units), est = NA_real_, ci_lb = NA_real_, ci_ub = NA_real_,
                  tau2 = NA_real_, new_est = NA_real_, new_ci_lb = NA_real_, new_ci_ub = NA_real_,
                  new_tau2 = NA_real_, new_tau2_lb = NA_real_, new_tau2_ub = NA_real_,
                  pi_lb = NA_real_, pi_ub = NA_real_, error = "", stringsAsFactors = FALSE)

CONV <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
# where Fisher scoring does not converge at CONV, metafor's remedy (halved
# steps), as benchmarks/run.py does for workload (a)
reml <- function(yi, vi, ...) {
  tryCatch(rma(yi, vi, method = "REML", control = CONV, ...),
           error = function(e) rma(yi, vi, method = "REML", control = c(CONV, stepadj = 0.5), ...))
}
# confint's search for the upper tau2 bound stops at tau2.max (default 100)
# and reports 100; meta's Q-profile solver is unbounded, so raise the cap
CI_CONTROL <- list(tol = 1e-12, tau2.max = 1e8)

one <- function(u) {
  m <- u$measure[1]; meth <- u$method[1]; mod <- u$model[1]
  lev <- 100 * (1 - u$alpha[1]); k <- nrow(u)
  dich <- u$data_type[1] == "dichotomous"
  if (dich && m %in% c("RR", "OR", "RD", "Peto OR")) {
    es <- escalc(measure = if (m == "Peto OR") "PETO" else m, ai = u$ai, n1i = u$n1i,
                 ci = u$ci, n2i = u$n2i, add = if (m == "Peto OR") 0 else 0.5,
                 to = if (m == "Peto OR") "none" else "only0")
    yi <- as.numeric(es$yi); vi <- es$vi
    if (m == "RD") yi <- u$ai / u$n1i - u$ci / u$n2i
    if (m == "RR") yi[u$ai == u$n1i & u$ci == u$n2i] <- 0
  } else if (m == "MD") {
    es <- escalc("MD", m1i = u$m1i, sd1i = u$sd1i, n1i = u$n1i, m2i = u$m2i, sd2i = u$sd2i,
                 n2i = u$n2i)
    yi <- as.numeric(es$yi); vi <- es$vi
  } else {
    yi <- u$yi; vi <- u$vi
  }
  if (meth == "MH") {
    mh <- rma.mh(ai = u$ai, n1i = u$n1i, ci = u$ci, n2i = u$n2i, measure = m,
                 add = c(0.5, 0.5), to = c("only0", "only0"), drop00 = c(FALSE, FALSE), level = lev)
    if (mod == "fixed") {
      fit <- mh; t2 <- 0
    } else {
      w <- 1 / vi; Q <- sum(w * (yi - as.numeric(mh$beta))^2); cc <- sum(w) - sum(w^2) / sum(w)
      t2 <- if (k > 1 && cc > 0) max(0, (Q - (k - 1)) / cc) else 0
      fit <- rma(yi, vi, tau2 = t2, level = lev)
    }
  } else if (meth == "Peto" && dich) {
    fit <- rma.peto(ai = u$ai, n1i = u$n1i, ci = u$ci, n2i = u$n2i, level = lev); t2 <- 0
  } else {
    fit <- if (meth == "IV" && mod == "random-REML") reml(yi, vi, level = lev) else
      rma(yi, vi, method = if (meth == "IV" && mod == "random") "DL" else "FE", level = lev)
    t2 <- if (is.null(fit$tau2)) 0 else fit$tau2
  }
  out <- c(as.numeric(fit$beta), fit$ci.lb, fit$ci.ub, t2, rep(NA_real_, 8))
  if (k >= 2) {
    new <- reml(yi, vi, test = "knha", level = lev)
    ci <- confint(new, control = CI_CONTROL)$random
    p <- predict(new)
    out[5:12] <- c(as.numeric(new$beta), new$ci.lb, new$ci.ub, new$tau2,
                   ci["tau^2", "ci.lb"], ci["tau^2", "ci.ub"], if (k >= 3) c(p$pi.lb, p$pi.ub) else c(NA, NA))
  }
  out
}

vals <- matrix(NA_real_, nu, 12)
err <- character(nu)
t <- system.time(
  for (r in seq_len(copies)) {
    for (i in seq_len(nu)) {
      v <- tryCatch(suppressWarnings(one(units[[i]])),
                    error = function(e) { err[i] <<- conditionMessage(e); NULL })
      if (!is.null(v)) vals[i, ] <- v
    }
  }
)
res[, 2:13] <- vals
res$error <- err
write.csv(res, args[2], row.names = FALSE)
cat(sprintf("ELAPSED %.6f UNITS %d FAILED %d\n", t[["elapsed"]], nu * copies, sum(err != "")))
