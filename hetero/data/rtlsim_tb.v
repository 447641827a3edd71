// Test bench around a hetero top level for the native harness (hetero/rtlsim.py).
//
// Every input of the design is a register of this bench, set once per clock edge by one DPI
// call to the C++ harness (rtlsim_main.cpp), which sees the values the design's flip-flops
// sample at that edge. The bench's only port is the clock, so Verilator evaluates the design's
// combinational logic once per edge (with the design's inputs as top-level ports it would
// evaluate it again on every input change, and generate that code twice).
//
// Defines: RTLSIM_DUT (the design's module name), RTLSIM_PROBES (the design has
// probe_valid/probe_ready ports). Parameters: IN_W, OUT_W (tdata bits), PROBE_W (probe bits).

module hetero_rtlsim_tb #(
    parameter int IN_W = 8,
    parameter int OUT_W = 8,
    parameter int PROBE_W = 1
) (
    input clk
);
    import "DPI-C" function void rtlsim_edge(
        input bit s_ready, input bit m_valid, input bit m_last, input bit [OUT_W-1:0] m_data,
        input bit [PROBE_W-1:0] probe_valid, input bit [PROBE_W-1:0] probe_ready,
        output bit rst_n, output bit s_valid_n, output bit s_last_n,
        output bit [IN_W-1:0] s_data_n, output bit m_ready_n);

    bit rst = 1'b1;
    bit s_valid = 1'b0;
    bit s_last = 1'b0;
    bit [IN_W-1:0] s_data = '0;
    bit m_ready = 1'b0;
    wire s_ready, m_valid, m_last;
    wire [OUT_W-1:0] m_data;
    wire [PROBE_W-1:0] probe_valid, probe_ready;

    `RTLSIM_DUT dut (
        .clk(clk), .rst(rst),
        .s_axis_tdata(s_data), .s_axis_tvalid(s_valid), .s_axis_tready(s_ready),
        .s_axis_tlast(s_last),
        .m_axis_tdata(m_data), .m_axis_tvalid(m_valid), .m_axis_tready(m_ready),
        .m_axis_tlast(m_last)
`ifdef RTLSIM_PROBES
        , .probe_valid(probe_valid), .probe_ready(probe_ready)
`endif
    );
`ifndef RTLSIM_PROBES
    assign probe_valid = '0;
    assign probe_ready = '0;
`endif

    bit rst_n, s_valid_n, s_last_n, m_ready_n;
    bit [IN_W-1:0] s_data_n;
    always @(posedge clk) begin
        rtlsim_edge(s_ready, m_valid, m_last, m_data, probe_valid, probe_ready,
                    rst_n, s_valid_n, s_last_n, s_data_n, m_ready_n);
        rst <= rst_n;
        s_valid <= s_valid_n;
        s_last <= s_last_n;
        s_data <= s_data_n;
        m_ready <= m_ready_n;
    end
endmodule
