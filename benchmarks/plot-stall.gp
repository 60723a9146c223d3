# plot-stall.gp - stall.png from benchmarks/compare's stall.dat.
# Called as: gnuplot -e "datafile='...'; outfile='...'; n=N" plot-stall.gp
# One data block per configuration (its name on the first line), rows:
# live heap MiB, median longest mutator stall in ms (gcold).
set terminal pngcairo size 900, 600 font "sans,10"
set output outfile
set title "gcold: longest mutator stall vs live heap (median of rounds)"
set xlabel "live heap (MiB, log)"
set ylabel "longest stall (ms, log)"
set logscale xy
set grid
set key top left noenhanced
set datafile missing "NaN"
plot for [i=0:n-1] datafile index i using 1:2 with linespoints \
     lw 2 pt 7 title columnheader(1)
